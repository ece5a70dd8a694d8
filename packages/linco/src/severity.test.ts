import { describe, expect, it } from 'vitest';
import { LAW_ARTICLES, LAW_CHARGES, lawArticle, lawCharge, normalizeChargeName, type Penalty } from './criminal-law.js';
import { caseSeverity, describePenalty, penaltyScore, severityBand, severityScore } from './severity.js';

/** The articles CAIL2018 cites (its law list, 183 articles). */
const CAIL_ARTICLES = [
  114, 115, 116, 117, 118, 119, 122, 124, 125, 127, 128, 130, 132, 133, 134, 135, 136, 140, 141, 143, 144, 147, 149, 150, 151, 152, 153, 155, 156, 158, 159, 161, 162, 163, 164, 168,
  170, 171, 172, 175, 176, 177, 184, 185, 186, 191, 192, 193, 194, 196, 198, 199, 200, 201, 205, 209, 210, 211, 212, 213, 214, 215, 217, 220, 223, 224, 225, 226, 227, 228, 231, 232,
  233, 234, 235, 236, 237, 238, 239, 240, 241, 243, 244, 245, 246, 248, 253, 258, 260, 261, 262, 263, 264, 266, 267, 268, 269, 270, 271, 272, 273, 274, 275, 276, 277, 279, 280, 281,
  282, 283, 285, 286, 288, 290, 291, 292, 293, 294, 295, 302, 303, 305, 307, 308, 310, 312, 313, 314, 315, 316, 326, 328, 333, 336, 338, 340, 341, 342, 343, 344, 345, 346, 347, 348,
  349, 350, 351, 352, 353, 354, 356, 357, 358, 359, 360, 361, 363, 364, 367, 369, 372, 375, 382, 383, 384, 385, 386, 387, 388, 389, 390, 391, 392, 393, 395, 396, 397, 399, 402, 404,
  413, 417, 418,
];

/** CAIL2018's 202 charge names, as its charge list spells them. */
const CAIL_CHARGES = `妨害公务 寻衅滋事 盗窃、侮辱尸体 危险物品肇事 非法采矿 组织、强迫、引诱、容留、介绍卖淫 开设赌场 聚众斗殴 绑架 非法持有毒品 销售假冒注册商标的商品 容留他人吸毒 假冒注册商标 交通肇事
破坏电力设备 组织卖淫 合同诈骗 走私武器、弹药 抢劫 非法处置查封、扣押、冻结的财产 以危险方法危害公共安全 过失投放危险物质 非法制造、买卖、运输、邮寄、储存枪支、弹药、爆炸物
伪造、变造、买卖武装部队公文、证件、印章 持有、使用假币 重婚 聚众冲击国家机关 生产、销售伪劣农药、兽药、化肥、种子 收买被拐卖的妇女、儿童 聚众哄抢 重大劳动安全事故 侵占 包庇毒品犯罪分子
虚报注册资本 违法发放贷款 制造、贩卖、传播淫秽物品 窝藏、包庇 帮助毁灭、伪造证据 放火 强奸 非法携带枪支、弹药、管制刀具、危险物品危及公共安全 伪造、变造金融票证 爆炸 玩忽职守 对非国家工作人员行贿
伪造、倒卖伪造的有价票证 私分国有资产 非法收购、运输、加工、出售国家重点保护植物、国家重点保护植物制品 生产、销售假药 挪用特定款物 过失致人死亡 走私国家禁止进出口的货物、物品
非法制造、买卖、运输、储存危险物质 洗钱 骗取贷款、票据承兑、金融票证 非法买卖制毒物品 非法买卖、运输、携带、持有毒品原植物种子、幼苗 生产、销售有毒、有害食品 滥用职权 招收公务员、学生徇私舞弊
诬告陷害 非法获取国家秘密 非法行医 非法收购、运输、出售珍贵、濒危野生动物、珍贵、濒危野生动物制品 非法出售发票 行贿 高利转贷 非法吸收公众存款 传播淫秽物品 非法进行节育手术 盗伐林木
聚众扰乱社会秩序 走私、贩卖、运输、制造毒品 滥伐林木 赌博 非法经营 生产、销售不符合安全标准的食品 提供侵入、非法控制计算机信息系统程序、工具 倒卖文物 窃取、收买、非法提供信用卡信息
盗掘古文化遗址、古墓葬 协助组织卖淫 破坏广播电视设施、公用电信设施 走私普通货物、物品 逃税 破坏监管秩序 失火 受贿 组织、领导、参加黑社会性质组织 票据诈骗 非法制造、销售非法制造的注册商标标识
侵犯著作权 伪造、变造、买卖国家机关公文、证件、印章 徇私舞弊不征、少征税款 强迫劳动 贷款诈骗 劫持船只、汽车 诈骗 非法种植毒品原植物 非法狩猎 挪用资金 非法收购、运输盗伐、滥伐的林木
出售、购买、运输假币 抢夺 虐待被监管人 窝藏、转移、收购、销售赃物 破坏计算机信息系统 制作、复制、出版、贩卖、传播淫秽物品牟利 拒不支付劳动报酬 盗窃、抢夺枪支、弹药、爆炸物 强迫他人吸毒
走私珍贵动物、珍贵动物制品 虐待 非法获取公民个人信息 破坏交通设施 非法转让、倒卖土地使用权 非法捕捞水产品 非法占用农用地 非法制造、出售非法制造的发票 非法持有、私藏枪支、弹药 集资诈骗
强迫卖淫 伪造公司、企业、事业单位、人民团体印章 利用影响力受贿 编造、故意传播虚假恐怖信息 介绍贿赂 传播性病 拐卖妇女、儿童 倒卖车票、船票 窝藏、转移、隐瞒毒品、毒赃 徇私舞弊不移交刑事案件
过失损坏广播电视设施、公用电信设施 动植物检疫徇私舞弊 破坏交通工具 猥亵儿童 挪用公款 伪造货币 冒充军人招摇撞骗 非法采伐、毁坏国家重点保护植物 故意毁坏财物 非法拘禁 招摇撞骗 伪造、变造居民身份证
徇私枉法 非法生产、买卖警用装备 掩饰、隐瞒犯罪所得、犯罪所得收益 生产、销售伪劣产品 破坏生产经营 帮助犯罪分子逃避处罚 贪污 投放危险物质 持有伪造的发票 危险驾驶 妨害作证
非法猎捕、杀害珍贵、濒危野生动物 重大责任事故 诽谤 虚开发票 引诱、教唆、欺骗他人吸毒 脱逃 扰乱无线电通讯管理秩序 保险诈骗 非法生产、销售间谍专用器材 非法组织卖血 强迫交易 串通投标
破坏易燃易爆设备 传授犯罪方法 妨害信用卡管理 拐骗儿童 单位行贿 打击报复证人 拒不执行判决、裁定 经济犯 金融凭证诈骗 虚开增值税专用发票、用于骗取出口退税、抵扣税款发票 走私废物
组织、领导传销活动 单位受贿 盗窃、抢夺枪支、弹药、爆炸物、危险物质 过失以危险方法危害公共安全 过失致人重伤 引诱、容留、介绍卖淫 遗弃 走私 信用卡诈骗 对单位行贿 故意杀人
聚众扰乱公共场所秩序、交通秩序 盗窃 故意伤害 非法侵入住宅 强制猥亵、侮辱妇女 伪证 污染环境 巨额财产来源不明 非国家工作人员受贿 侮辱 隐匿、故意销毁会计凭证、会计帐簿、财务会计报告
过失损坏武器装备、军事设施、军事通信 敲诈勒索 职务侵占`.split(/\s+/);

const rank = (p: Penalty) => (p === 'death' ? 1e6 : p === 'life' ? 1e5 : p);

describe('the Criminal Law table', () => {
  it("holds exactly CAIL2018's 183 articles, each with a maximum or a stated reason for none", () => {
    expect(CAIL_ARTICLES).toHaveLength(183);
    expect(LAW_ARTICLES.map((a) => a.article)).toEqual(CAIL_ARTICLES);
    for (const a of LAW_ARTICLES) {
      expect(a.offence.length, `Art. ${a.article}`).toBeGreaterThan(1);
      if (typeof a.max === 'number') expect([6, 12, 24, 36, 60, 84, 120, 180], `Art. ${a.article}`).toContain(a.max);
      if (a.refersTo !== undefined) expect(lawArticle(a.refersTo)?.max, `Art. ${a.article} → ${a.refersTo}`).toBe(a.max);
    }
    // Rule-only articles (definitions, unit crimes): no maximum of their own.
    expect(LAW_ARTICLES.filter((a) => a.max === null).map((a) => a.article)).toEqual([150, 156, 184, 185, 211, 212, 220, 231, 346, 356, 357, 367]);
  });

  it("gives every one of CAIL2018's 202 charges its article and maximum, except the label 经济犯", () => {
    expect(CAIL_CHARGES).toHaveLength(202);
    expect(new Set(CAIL_CHARGES).size).toBe(202);
    const missing = CAIL_CHARGES.filter((c) => lawCharge(c) === undefined);
    expect(missing).toEqual(['经济犯']);
    expect(LAW_CHARGES).toHaveLength(201);
    for (const c of LAW_CHARGES) {
      expect(CAIL_CHARGES, c.charge).toContain(c.charge);
      const article = lawArticle(c.article);
      expect(article, `${c.charge}: Art. ${c.article}`).toBeDefined();
      // A charge is never punished more heavily than its article allows.
      if (article!.max !== null) expect(rank(c.max), c.charge).toBeLessThanOrEqual(rank(article!.max));
    }
  });

  it('has the maxima of well-known offences', () => {
    const max = (charge: string) => lawCharge(charge)?.max;
    expect(max('盗窃')).toBe('life'); // Amendment VIII abolished death for theft
    expect(max('故意杀人')).toBe('death');
    expect(max('危险驾驶')).toBe(6); // criminal detention only
    expect(max('交通肇事')).toBe(180);
    expect(max('寻衅滋事')).toBe(120);
    expect(max('走私、贩卖、运输、制造毒品')).toBe('death');
    expect(max('组织卖淫')).toBe('life'); // Amendment IX abolished death
    expect(max('妨害公务')).toBe(36);
    expect(max('重婚')).toBe(24);
    expect(lawArticle(115)?.max).toBe('death');
    expect(max('失火')).toBe(84); // Art. 115, negligent paragraph
  });

  it('normalizes charge names as judgments write them', () => {
    expect(normalizeChargeName('盗窃罪')).toBe('盗窃');
    expect(normalizeChargeName('[故意伤害]')).toBe('故意伤害');
    expect(normalizeChargeName('贩卖毒品罪')).toBe('走私、贩卖、运输、制造毒品');
    expect(lawCharge('诈 骗')?.article).toBe(266);
  });
});

describe('caseSeverity', () => {
  it('maps statutory maxima to scores and bands', () => {
    expect([6, 36, 60, 84, 120, 180, 'life', 'death'].map((p) => penaltyScore(p as Penalty))).toEqual([1, 1, 2, 2, 3, 3, 4, 5]);
    expect([1, 2, 3, 4, 5].map(severityBand)).toEqual(['light', 'light', 'medium', 'heavy', 'heavy']);
    expect(describePenalty(6)).toBe('6 months');
    expect(describePenalty(120)).toBe('10 years');
    expect(describePenalty('life')).toBe('life imprisonment');
  });

  it("reads the articles, uses a charge's own maximum within its article, and falls back to the charges", () => {
    expect(caseSeverity({ articles: [133], charges: ['危险驾驶'] })).toEqual({ max: 6, score: 1, band: 'light', source: 'articles' });
    expect(caseSeverity({ articles: [133], charges: ['交通肇事'] })).toEqual({ max: 180, score: 3, band: 'medium', source: 'articles' });
    // Art. 114 alone (no serious consequence yet) caps 放火 at 10 years; Art. 115 at death.
    expect(caseSeverity({ articles: [114], charges: ['放火'] })?.max).toBe(120);
    expect(caseSeverity({ articles: [114, 115], charges: ['放火'] })?.max).toBe('death');
    // The gravest of several offences decides.
    expect(caseSeverity({ articles: [264, 234], charges: ['盗窃', '故意伤害'] })).toMatchObject({ max: 'death', band: 'heavy' });
    // Rule-only articles are skipped; articles outside the table too; then the charges decide.
    expect(caseSeverity({ articles: [150], charges: ['生产、销售伪劣产品'] })).toEqual({ max: 'life', score: 4, band: 'heavy', source: 'charges' });
    expect(caseSeverity({ articles: [], charges: ['妨害公务罪'] })).toEqual({ max: 36, score: 1, band: 'light', source: 'charges' });
    expect(caseSeverity({ articles: [999], charges: ['经济犯'] })).toBeUndefined();
    // Art. 382 (definition of 贪污) carries Art. 383's penalty.
    expect(caseSeverity({ articles: [382, 383], charges: ['贪污'] })?.max).toBe('death');
    // A data set's own scale (the synthetic generator's) wins over the law.
    expect(severityScore({ articles: [264], charges: ['盗窃'], severity: 2 })).toBe(2);
    expect(severityScore({ articles: [264], charges: ['盗窃'] })).toBe(4);
  });
});
