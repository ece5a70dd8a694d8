/**
 * Mainland China's 31 provincial-level divisions and their prefecture-level divisions
 * (cities, autonomous prefectures, leagues, prefectures), so a place named in a judgment
 * can be resolved to its province even when the province is left out ("温州市鹿城区人民检察院"
 * names only the city). Names are the bare forms without 省/市/自治区/州/盟/地区; a few former
 * names (襄樊, 思茅, 巢湖, 莱芜) stay because judgments of their time use them. Hong Kong, Macao
 * and Taiwan are not mainland divisions and are not listed.
 */

export interface Province {
  /** English (pinyin) name, the value a `region` attribute takes: 'Guangdong', 'Inner Mongolia'. */
  en: string;
  /** Full Chinese name: 广东省, 北京市, 广西壮族自治区. */
  zh: string;
  /** Short Chinese name without the suffix: 广东, 北京, 广西. */
  short: string;
  kind: 'province' | 'municipality' | 'autonomous region';
  /** Prefecture-level divisions (bare names; for municipalities, none). */
  cities: readonly string[];
}

export const PROVINCES: readonly Province[] = [
  { en: 'Beijing', zh: '北京市', short: '北京', kind: 'municipality', cities: [] },
  { en: 'Tianjin', zh: '天津市', short: '天津', kind: 'municipality', cities: [] },
  { en: 'Shanghai', zh: '上海市', short: '上海', kind: 'municipality', cities: [] },
  { en: 'Chongqing', zh: '重庆市', short: '重庆', kind: 'municipality', cities: [] },
  {
    en: 'Hebei', zh: '河北省', short: '河北', kind: 'province',
    cities: ['石家庄', '唐山', '秦皇岛', '邯郸', '邢台', '保定', '张家口', '承德', '沧州', '廊坊', '衡水'],
  },
  {
    en: 'Shanxi', zh: '山西省', short: '山西', kind: 'province',
    cities: ['太原', '大同', '阳泉', '长治', '晋城', '朔州', '晋中', '运城', '忻州', '临汾', '吕梁'],
  },
  {
    en: 'Inner Mongolia', zh: '内蒙古自治区', short: '内蒙古', kind: 'autonomous region',
    cities: ['呼和浩特', '包头', '乌海', '赤峰', '通辽', '鄂尔多斯', '呼伦贝尔', '巴彦淖尔', '乌兰察布', '兴安', '锡林郭勒', '阿拉善'],
  },
  {
    en: 'Liaoning', zh: '辽宁省', short: '辽宁', kind: 'province',
    cities: ['沈阳', '大连', '鞍山', '抚顺', '本溪', '丹东', '锦州', '营口', '阜新', '辽阳', '盘锦', '铁岭', '朝阳', '葫芦岛'],
  },
  {
    en: 'Jilin', zh: '吉林省', short: '吉林', kind: 'province',
    cities: ['长春', '吉林', '四平', '辽源', '通化', '白山', '松原', '白城', '延边'],
  },
  {
    en: 'Heilongjiang', zh: '黑龙江省', short: '黑龙江', kind: 'province',
    cities: ['哈尔滨', '齐齐哈尔', '鸡西', '鹤岗', '双鸭山', '大庆', '伊春', '佳木斯', '七台河', '牡丹江', '黑河', '绥化', '大兴安岭'],
  },
  {
    en: 'Jiangsu', zh: '江苏省', short: '江苏', kind: 'province',
    cities: ['南京', '无锡', '徐州', '常州', '苏州', '南通', '连云港', '淮安', '盐城', '扬州', '镇江', '泰州', '宿迁'],
  },
  {
    en: 'Zhejiang', zh: '浙江省', short: '浙江', kind: 'province',
    cities: ['杭州', '宁波', '温州', '嘉兴', '湖州', '绍兴', '金华', '衢州', '舟山', '台州', '丽水'],
  },
  {
    en: 'Anhui', zh: '安徽省', short: '安徽', kind: 'province',
    cities: ['合肥', '芜湖', '蚌埠', '淮南', '马鞍山', '淮北', '铜陵', '安庆', '黄山', '滁州', '阜阳', '宿州', '六安', '亳州', '池州', '宣城', '巢湖'],
  },
  {
    en: 'Fujian', zh: '福建省', short: '福建', kind: 'province',
    cities: ['福州', '厦门', '莆田', '三明', '泉州', '漳州', '南平', '龙岩', '宁德'],
  },
  {
    en: 'Jiangxi', zh: '江西省', short: '江西', kind: 'province',
    cities: ['南昌', '景德镇', '萍乡', '九江', '新余', '鹰潭', '赣州', '吉安', '宜春', '抚州', '上饶'],
  },
  {
    en: 'Shandong', zh: '山东省', short: '山东', kind: 'province',
    cities: ['济南', '青岛', '淄博', '枣庄', '东营', '烟台', '潍坊', '济宁', '泰安', '威海', '日照', '临沂', '德州', '聊城', '滨州', '菏泽', '莱芜'],
  },
  {
    en: 'Henan', zh: '河南省', short: '河南', kind: 'province',
    cities: ['郑州', '开封', '洛阳', '平顶山', '安阳', '鹤壁', '新乡', '焦作', '濮阳', '许昌', '漯河', '三门峡', '南阳', '商丘', '信阳', '周口', '驻马店', '济源'],
  },
  {
    en: 'Hubei', zh: '湖北省', short: '湖北', kind: 'province',
    cities: ['武汉', '黄石', '十堰', '宜昌', '襄阳', '襄樊', '鄂州', '荆门', '孝感', '荆州', '黄冈', '咸宁', '随州', '恩施', '仙桃', '潜江', '天门', '神农架'],
  },
  {
    en: 'Hunan', zh: '湖南省', short: '湖南', kind: 'province',
    cities: ['长沙', '株洲', '湘潭', '衡阳', '邵阳', '岳阳', '常德', '张家界', '益阳', '郴州', '永州', '怀化', '娄底', '湘西'],
  },
  {
    en: 'Guangdong', zh: '广东省', short: '广东', kind: 'province',
    cities: ['广州', '韶关', '深圳', '珠海', '汕头', '佛山', '江门', '湛江', '茂名', '肇庆', '惠州', '梅州', '汕尾', '河源', '阳江', '清远', '东莞', '中山', '潮州', '揭阳', '云浮'],
  },
  {
    en: 'Guangxi', zh: '广西壮族自治区', short: '广西', kind: 'autonomous region',
    cities: ['南宁', '柳州', '桂林', '梧州', '北海', '防城港', '钦州', '贵港', '玉林', '百色', '贺州', '河池', '来宾', '崇左'],
  },
  {
    en: 'Hainan', zh: '海南省', short: '海南', kind: 'province',
    cities: ['海口', '三亚', '三沙', '儋州', '琼海', '文昌', '万宁', '五指山'],
  },
  {
    en: 'Sichuan', zh: '四川省', short: '四川', kind: 'province',
    cities: ['成都', '自贡', '攀枝花', '泸州', '德阳', '绵阳', '广元', '遂宁', '内江', '乐山', '南充', '眉山', '宜宾', '广安', '达州', '雅安', '巴中', '资阳', '阿坝', '甘孜', '凉山'],
  },
  {
    en: 'Guizhou', zh: '贵州省', short: '贵州', kind: 'province',
    cities: ['贵阳', '六盘水', '遵义', '安顺', '毕节', '铜仁', '黔西南', '黔东南', '黔南'],
  },
  {
    en: 'Yunnan', zh: '云南省', short: '云南', kind: 'province',
    cities: ['昆明', '曲靖', '玉溪', '保山', '昭通', '丽江', '普洱', '思茅', '临沧', '楚雄', '红河', '文山', '西双版纳', '大理', '德宏', '怒江', '迪庆'],
  },
  {
    en: 'Tibet', zh: '西藏自治区', short: '西藏', kind: 'autonomous region',
    cities: ['拉萨', '日喀则', '昌都', '林芝', '山南', '那曲', '阿里'],
  },
  {
    en: 'Shaanxi', zh: '陕西省', short: '陕西', kind: 'province',
    cities: ['西安', '铜川', '宝鸡', '咸阳', '渭南', '延安', '汉中', '榆林', '安康', '商洛'],
  },
  {
    en: 'Gansu', zh: '甘肃省', short: '甘肃', kind: 'province',
    cities: ['兰州', '嘉峪关', '金昌', '白银', '天水', '武威', '张掖', '平凉', '酒泉', '庆阳', '定西', '陇南', '临夏', '甘南'],
  },
  {
    en: 'Qinghai', zh: '青海省', short: '青海', kind: 'province',
    // 海南 here is 海南藏族自治州; bare 海南 is the province of Hainan (see resolvePlace).
    cities: ['西宁', '海东', '海北', '黄南', '果洛', '玉树', '海西'],
  },
  {
    en: 'Ningxia', zh: '宁夏回族自治区', short: '宁夏', kind: 'autonomous region',
    cities: ['银川', '石嘴山', '吴忠', '固原', '中卫'],
  },
  {
    en: 'Xinjiang', zh: '新疆维吾尔自治区', short: '新疆', kind: 'autonomous region',
    cities: ['乌鲁木齐', '克拉玛依', '吐鲁番', '哈密', '昌吉', '博尔塔拉', '巴音郭楞', '阿克苏', '克孜勒苏', '喀什', '和田', '伊犁', '塔城', '阿勒泰', '石河子', '五家渠', '阿拉尔', '图木舒克'],
  },
];

/** Names that need their full form to be read: 海南州 is in Qinghai, bare 海南 is the province. */
const QUALIFIED: readonly { name: string; province: string }[] = [
  { name: '海南藏族自治州', province: 'Qinghai' },
  { name: '海南州', province: 'Qinghai' },
];

export interface PlaceMatch {
  /** The province's English name. */
  province: string;
  /** The text that matched (广东省, 温州, 海南州). */
  text: string;
  /** Where in the searched text it starts. */
  index: number;
  /** A province name, or a city / prefecture that implies one. */
  level: 'province' | 'city';
}

interface Entry {
  name: string;
  province: string;
  level: 'province' | 'city';
  /** A full form (省, 自治区, 市 of a municipality, 海南州): no suffix needed in running text. */
  full: boolean;
}

/** Entries by their first character, longest first: a scan tries only the few that can match. */
const BY_FIRST_CHAR: ReadonlyMap<string, readonly Entry[]> = (() => {
  const out: Entry[] = [];
  for (const p of PROVINCES) {
    out.push({ name: p.zh, province: p.en, level: 'province', full: true });
    out.push({ name: p.short, province: p.en, level: 'province', full: false });
    for (const c of p.cities) out.push({ name: c, province: p.en, level: 'city', full: false });
  }
  for (const q of QUALIFIED) out.push({ name: q.name, province: q.province, level: 'city', full: true });
  // Longest first, so 海南州 wins over 海南 (a stable sort keeps a province before its namesake city).
  out.sort((a, b) => b.name.length - a.name.length);
  const index = new Map<string, Entry[]>();
  for (const e of out) {
    const list = index.get(e.name[0]!) ?? [];
    list.push(e);
    index.set(e.name[0]!, list);
  }
  return index;
})();

/**
 * What may follow a name that is not the place itself: a smaller unit of the same name
 * elsewhere (北京's 朝阳区 is not 辽宁's 朝阳市, 大连's 中山区 not 广东's 中山市), a street
 * (中山路), or a word that starts with 市 (大同市场 is a market).
 */
const SMALLER_UNIT = /^(?:[区县镇乡村路街道巷里桥]|市场|市民)/;
/** Suffixes a bare name needs in running text: 温州市, 恩施州, 锡林郭勒盟, 阿里地区, 延边朝鲜族自治州. */
const PLACE_SUFFIX = /^(?:市|州|盟|地区|省|[\u4e00-\u9fa5]{1,8}?自治[州区])/;

/**
 * Every province or prefecture named in `text`, scanned left to right with the longest
 * name first at each position (so 浙江西湖区 reads 浙江 then 西湖区, never 江西). With
 * `bare: true` (the name of a procuratorate or court, where 温州鹿城区 is usual) a bare
 * name counts; otherwise it needs a suffix (温州市, 恩施州) or must be a full name (浙江省).
 * A name followed by 区/县/路/街... is a smaller unit of the same name elsewhere (北京's 朝阳区
 * is not 辽宁's 朝阳市) and never counts.
 */
export function findPlaces(text: string, options: { bare?: boolean } = {}): PlaceMatch[] {
  const out: PlaceMatch[] = [];
  let i = 0;
  while (i < text.length) {
    let matched: Entry | undefined;
    for (const e of BY_FIRST_CHAR.get(text[i]!) ?? []) {
      if (!text.startsWith(e.name, i)) continue;
      const rest = text.slice(i + e.name.length, i + e.name.length + 12);
      if (SMALLER_UNIT.test(rest)) continue;
      if (!e.full && !options.bare && !PLACE_SUFFIX.test(rest)) continue;
      matched = e;
      break;
    }
    if (matched) {
      out.push({ province: matched.province, text: matched.name, index: i, level: matched.level });
      i += matched.name.length;
    } else {
      i++;
    }
  }
  return out;
}

/** English province name → province; also accepts the Chinese full or short name. */
export function provinceByName(name: string): Province | undefined {
  const n = name.trim();
  return PROVINCES.find((p) => p.en.toLowerCase() === n.toLowerCase() || p.zh === n || p.short === n);
}
