/**
 * Group attributes read from a judgment's fact text, for data sets (CAIL2018) whose
 * metadata has no region, gender or date. Each reader returns the value and where it was
 * found, so a report can say how many cases got their region from the procuratorate that
 * brought the case and how many from a place the text mentions.
 *
 * Text is NFKC-normalized first, so full-width digits and punctuation (２０１５年, ，（）：)
 * read like their ASCII forms; the ideographic full stop 。 and the enumeration comma 、
 * have no ASCII form and are matched as they are.
 */
import { findPlaces } from './places.js';

export type AttributeSource = 'metadata' | 'procuratorate' | 'court' | 'text';

export interface Extracted<T> {
  value: T;
  source: AttributeSource;
  /** The words the value was read from (for reports and debugging). */
  evidence: string;
}

export function normalizeFact(text: string): string {
  return text.normalize('NFKC');
}

const CLAUSE_BREAK = /[,;:。()\s]/;
/** Institutions whose name carries the place of the case: the procuratorate, the court. */
const INSTITUTION = /(人民检察院|检察院|人民法院|法院)/g;
/** A clause about where the defendant lives or was born, not where the case is. */
const DOMICILE = /户籍|户口|籍贯|原籍|住址|住所|暂住|居住|家住|现住|住在|出生|身份证/;

/**
 * The province of the case. First the procuratorate or court named in the text
 * ("浙江省温州市鹿城区人民检察院指控", "温州市鹿城区人民检察院": the city implies the province);
 * otherwise the province most often named in the text with its suffix (省, 市, 州, 自治区),
 * leaving out clauses about the defendant's domicile or birthplace (户籍地湖南省…), which
 * say where the defendant is from, not where the case was tried.
 */
export function extractRegion(fact: string): Extracted<string> | undefined {
  const text = normalizeFact(fact);
  for (const m of text.matchAll(INSTITUTION)) {
    const end = m.index;
    // The institution's own name: the run of characters before it, back to a clause break.
    let start = end;
    while (start > 0 && end - start < 30 && !CLAUSE_BREAK.test(text[start - 1]!)) start--;
    const name = text.slice(start, end);
    const places = findPlaces(name, { bare: true });
    if (places.length === 0) continue;
    const pick = places.find((p) => p.level === 'province') ?? places[0]!;
    const source = m[1]!.includes('检察') ? 'procuratorate' : 'court';
    return { value: pick.province, source, evidence: `${name}${m[1]}` };
  }
  const counts = new Map<string, { n: number; first: number; text: string }>();
  for (const p of findPlaces(text)) {
    const clauseStart = Math.max(...[',', ';', '。', ':'].map((c) => text.lastIndexOf(c, p.index)));
    if (DOMICILE.test(text.slice(clauseStart + 1, p.index))) continue;
    const c = counts.get(p.province);
    if (c) c.n++;
    else counts.set(p.province, { n: 1, first: p.index, text: p.text });
  }
  let best: [string, { n: number; first: number; text: string }] | undefined;
  for (const e of counts) if (!best || e[1].n > best[1].n || (e[1].n === best[1].n && e[1].first < best[1].first)) best = e;
  return best ? { value: best[0], source: 'text', evidence: best[1].text } : undefined;
}

/** Up to the end of the defendant's introduction: the next sentence or the next person. */
const INTRO_END = /。|;|被告人|被害人|证人/;
const GENDER_TOKEN = /(?:^|[,(、\s])(男|女)(?:性)?(?=[,)、;。\s]|$)/;

/**
 * The gender of each defendant introduced as "被告人甲某,男,1980年出生" or "被告人王某某(女,
 * 汉族…)": a standalone 男/女 (or 男性/女性) among the words after the name, before the next
 * sentence or person. 男子, 女友 and the like are not standalone and never count.
 */
export function extractGenders(fact: string): { name: string; gender: 'male' | 'female' }[] {
  const text = normalizeFact(fact);
  const out: { name: string; gender: 'male' | 'female' }[] = [];
  let at = text.indexOf('被告人');
  while (at >= 0) {
    const after = text.slice(at + 3, at + 3 + 40);
    const cut = after.search(INTRO_END);
    const intro = cut >= 0 ? after.slice(0, cut) : after;
    const m = GENDER_TOKEN.exec(intro);
    if (m) {
      const name = intro.slice(0, m.index).replace(/[,(、\s].*$/, '');
      if (!out.some((o) => o.name === name)) out.push({ name, gender: m[1] === '男' ? 'male' : 'female' });
    }
    at = text.indexOf('被告人', at + 3);
  }
  return out;
}

/** The gender of the first defendant whose gender the text states. */
export function extractGender(fact: string): Extracted<'male' | 'female'> | undefined {
  const first = extractGenders(fact)[0];
  return first ? { value: first.gender, source: 'text', evidence: `被告人${first.name} ${first.gender === 'male' ? '男' : '女'}` } : undefined;
}

const CHINESE_DIGITS: Record<string, string> = { 〇: '0', 零: '0', '○': '0', Ｏ: '0', 一: '1', 二: '2', 三: '3', 四: '4', 五: '5', 六: '6', 七: '7', 八: '8', 九: '9' };
const YEAR = /((?:19|20)\d{2})\s*(?:年|[-./]\s*\d{1,2}\s*[-./]\s*\d{1,2})|([〇零○Ｏ一二三四五六七八九]{4})\s*年/g;
/** A birth date: "1980年3月出生", "(1985年生)", "生于1980年", "1980年出生". */
const BIRTH_AFTER = /^[\d\s年月日号]*(?:出生|生人|生[,)。;、]|生$)/;
const BIRTH_BEFORE = /(?:生于|出生于|出生日期|生日)[:\s]*$/;

/**
 * The year of the case: the latest year named in the text that is not a birth date
 * (2015年3月, 2015-03-01, 二〇一五年). The fact describes the offence and, usually, the arrest;
 * the latest of their dates is the one closest to the judgment. Earlier convictions
 * (2010年因盗窃罪被判处…) come before it and so do not decide the year.
 */
export function extractYear(fact: string, range: [number, number] = [1979, 2030]): Extracted<number> | undefined {
  const text = normalizeFact(fact);
  let best: { year: number; evidence: string } | undefined;
  for (const m of text.matchAll(YEAR)) {
    const digits = m[1] ?? [...m[2]!].map((ch) => CHINESE_DIGITS[ch]).join('');
    const year = Number(digits);
    if (!(year >= range[0] && year <= range[1])) continue;
    const after = text.slice(m.index + m[0].length, m.index + m[0].length + 10);
    const before = text.slice(Math.max(0, m.index - 6), m.index);
    if (BIRTH_AFTER.test(after) || BIRTH_BEFORE.test(before)) continue;
    if (!best || year > best.year) best = { year, evidence: m[0] };
  }
  return best ? { value: best.year, source: 'text', evidence: best.evidence } : undefined;
}

const PSEUDONYM = '[\\u4e00-\\u9fa5]某[某甲乙丙丁戊己庚辛壬癸]?|[甲乙丙丁戊己庚辛壬癸]某';
const NAMED = new RegExp(`被告人(${PSEUDONYM})`, 'g');
const LISTED = new RegExp(`^(?:、|和|与|及)(?:被告人)?(${PSEUDONYM})`);
const SEVERAL = /[二两三四五六七八九十]名?被告人|\d{1,2}名被告人|被告人(?:[二两三四五六七八九十]|\d{1,2})人|各被告人|同案被告人|共同被告人/;

/**
 * The defendants the text names: pseudonyms as CAIL writes them (张某, 王某某, 李某甲, 甲某;
 * listed ones too: "被告人甲某、乙某"), and any name introduced with a gender ("被告人李四,男").
 * Other plain names are not read: "被告人到案后," looks like one. `several` is true when the
 * text names more than one defendant or speaks of several ("二被告人", "被告人二人",
 * "同案被告人") even without naming them.
 */
export function extractDefendants(fact: string): { names: string[]; several: boolean } {
  const text = normalizeFact(fact);
  const names = new Set<string>();
  for (const m of text.matchAll(NAMED)) {
    names.add(m[1]!);
    let rest = text.slice(m.index + m[0].length);
    for (let l = LISTED.exec(rest); l; l = LISTED.exec(rest)) {
      names.add(l[1]!);
      rest = rest.slice(l[0].length);
    }
  }
  for (const g of extractGenders(text)) if (/^[\u4e00-\u9fa5]{2,4}$/.test(g.name) && !g.name.includes('某')) names.add(g.name);
  return { names: [...names], several: names.size > 1 || SEVERAL.test(text) };
}
