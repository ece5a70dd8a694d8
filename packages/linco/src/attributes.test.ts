import { describe, expect, it } from 'vitest';
import { extractDefendants, extractGender, extractGenders, extractRegion, extractYear } from './attributes.js';
import { findPlaces, PROVINCES, provinceByName } from './places.js';

describe('the province table', () => {
  it("covers mainland China's 31 provincial-level divisions and their prefecture-level divisions", () => {
    expect(PROVINCES).toHaveLength(31);
    expect(PROVINCES.filter((p) => p.kind === 'municipality').map((p) => p.en)).toEqual(['Beijing', 'Tianjin', 'Shanghai', 'Chongqing']);
    expect(PROVINCES.filter((p) => p.kind === 'autonomous region')).toHaveLength(5);
    expect(PROVINCES.filter((p) => p.kind === 'province')).toHaveLength(22);
    // 333 prefecture-level divisions today, plus former names and Hainan's and Xinjiang's directly administered cities.
    const cities = PROVINCES.flatMap((p) => p.cities);
    expect(cities.length).toBeGreaterThanOrEqual(333);
    // A bare name resolves to one province only (吉林 is a city of Jilin province; 海南州 is qualified).
    const owner = new Map<string, string>();
    for (const p of PROVINCES) {
      for (const name of [p.short, ...p.cities]) {
        if (owner.has(name)) expect(`${name}: ${owner.get(name)} and ${p.en}`).toBe(`${name}: ${p.en} and ${p.en}`);
        owner.set(name, p.en);
      }
    }
    expect(provinceByName('guangxi')?.zh).toBe('广西壮族自治区');
    expect(provinceByName('内蒙古')?.en).toBe('Inner Mongolia');
  });

  it('reads places left to right, longest name first, and refuses smaller units of the same name', () => {
    const names = (text: string, bare = false) => findPlaces(text, { bare }).map((p) => `${p.text}:${p.province}`);
    expect(names('浙江西湖区', true)).toEqual(['浙江:Zhejiang']);
    expect(names('北京市朝阳区人民法院')).toEqual(['北京市:Beijing']);
    expect(names('朝阳区', true)).toEqual([]);
    expect(names('辽宁省朝阳市')).toEqual(['辽宁省:Liaoning', '朝阳:Liaoning']);
    expect(names('海南州共和县', true)).toEqual(['海南州:Qinghai']);
    expect(names('海南省海口市')).toEqual(['海南省:Hainan', '海口:Hainan']);
    // In running text a bare name needs its suffix: 中山路 is a street, 大同市场 a market.
    expect(names('在中山路的大同市场内')).toEqual([]);
    expect(names('延边朝鲜族自治州和龙市')).toEqual(['延边:Jilin']);
    expect(names('锡林郭勒盟', false)).toEqual(['锡林郭勒:Inner Mongolia']);
  });
});

describe('extractRegion', () => {
  const region = (fact: string) => extractRegion(fact);

  it('reads the procuratorate or court, naming the province or only the city', () => {
    expect(region('浙江省温州市鹿城区人民检察院指控：2015年3月…')).toEqual({ value: 'Zhejiang', source: 'procuratorate', evidence: '浙江省温州市鹿城区人民检察院' });
    expect(region('公诉机关温州市鹿城区人民检察院指控')).toMatchObject({ value: 'Zhejiang', source: 'procuratorate' });
    expect(region('东莞市人民检察院指控，被告人…')).toMatchObject({ value: 'Guangdong', source: 'procuratorate' });
    expect(region('经广州铁路运输检察院提起公诉')).toMatchObject({ value: 'Guangdong', source: 'procuratorate' });
    expect(region('本案由湖南省长沙市中级人民法院审理')).toMatchObject({ value: 'Hunan', source: 'court' });
    expect(region('恩施州人民检察院指控')).toMatchObject({ value: 'Hubei' });
    // Full-width punctuation and digits read like ASCII ones.
    expect(region('广西壮族自治区南宁市青秀区人民检察院指控，２０１６年')).toMatchObject({ value: 'Guangxi' });
  });

  it("falls back to the places the text names, leaving out the defendant's domicile", () => {
    expect(region('公诉机关指控，被告人在江苏省南京市秦淮区某商场内盗窃')).toEqual({ value: 'Jiangsu', source: 'text', evidence: '江苏省' });
    expect(region('被告人苏某，户籍地湖南省邵阳县，现住广东省东莞市，在四川省成都市武侯区盗窃。')).toMatchObject({ value: 'Sichuan', source: 'text' });
    // A county-level procuratorate outside the table gives nothing to go on.
    expect(region('昌宁县人民检察院指控，被告人段某驾驶拖拉机…')).toBeUndefined();
    expect(region('公诉机关指控：被告人潘某驾驶小型轿车在道路上行驶。')).toBeUndefined();
  });
});

describe('extractGender', () => {
  it('reads a standalone 男/女 in the defendant introduction', () => {
    expect(extractGender('被告人甲某，男，1980年出生')).toEqual({ value: 'male', source: 'text', evidence: '被告人甲某 男' });
    expect(extractGender('被告人王某某（女，汉族，初中文化）')?.value).toBe('female');
    expect(extractGender('被告人李某,女性,1990年生')?.value).toBe('female');
    expect(extractGender('被告人（男）于2015年')?.value).toBe('male');
    // 女友 and 男子 are not a gender statement; nor is a victim's gender.
    expect(extractGender('被告人张某与其女友发生争执，殴打一男子。')).toBeUndefined();
    expect(extractGender('被告人张某殴打被害人李某，女，致其轻伤。')).toBeUndefined();
    expect(extractGenders('被告人张某，男，…；被告人李某，女，…')).toEqual([
      { name: '张某', gender: 'male' },
      { name: '李某', gender: 'female' },
    ]);
  });
});

describe('extractYear', () => {
  it('takes the latest year that is not a birth date', () => {
    expect(extractYear('被告人张某，男，1985年6月出生。2015年3月12日，被告人盗窃…2015年4月被抓获。')?.value).toBe(2015);
    expect(extractYear('被告人曾于2010年因盗窃罪被判处有期徒刑，2013年刑满释放。2016年5月，被告人再次盗窃。')?.value).toBe(2016);
    expect(extractYear('被告人（1979年生）于２０１７年７月１９日凌晨…')?.value).toBe(2017);
    expect(extractYear('被告人生于1988年，二〇一四年五月在某地盗窃。')?.value).toBe(2014);
    expect(extractYear('2016-03-01，被告人驾车…')?.value).toBe(2016);
    expect(extractYear('被告人1990年出生，无其他日期。')).toBeUndefined();
    expect(extractYear('被告人盗窃手机一部，价值1999元。')).toBeUndefined();
  });
});

describe('extractDefendants', () => {
  it('names pseudonymised defendants and notices several', () => {
    expect(extractDefendants('被告人甲某、乙某共同入户盗窃')).toEqual({ names: ['甲某', '乙某'], several: true });
    expect(extractDefendants('被告人范某与被告人彭某纠集多人斗殴')).toEqual({ names: ['范某', '彭某'], several: true });
    expect(extractDefendants('被告人王某某在家中。被告人王某某到案后如实供述')).toEqual({ names: ['王某某'], several: false });
    expect(extractDefendants('二被告人结伙盗窃').several).toBe(true);
    expect(extractDefendants('被告人李四，男，1980年生，被告人李四到案后如实供述')).toEqual({ names: ['李四'], several: false });
  });
});
