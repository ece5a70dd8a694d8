/**
 * Synthetic judgment cases with a known, controllable amount of injected inconsistency.
 *
 * A case's "lawful" outcome is a function of its fact text only: the charge is named by the
 * act described, and the term is the charge's base term times multipliers for the
 * circumstances written into the text (amount, injury, surrender, recidivism, ...). Each
 * group then judges with its own tendency: a term multiplier exp(a · τ_g · m(severity))
 * and a probability of choosing a confusable sibling charge. τ_g is spread evenly over
 * [-1, 1] across the groups of an attribute, `a` is the injected strength, and m lets the
 * inconsistency vary with charge severity. Group attributes are not in the text (unless
 * asked), so a model can only learn a group's tendency from that group's labels — which is
 * exactly what virtual judges are meant to pick up.
 */
import { createRng, type Rng } from '@kiln/tensor';
import type { JudgmentCase, Term } from './types.js';

export interface Circumstance {
  zh: string;
  en: string;
  factor: number;
}

export interface ChargeSpec {
  zh: string;
  en: string;
  /** 1 (lightest) .. 5. */
  severity: number;
  /** Lawful term in months before circumstances. */
  baseMonths: number;
  article: number;
  /** Act phrases (zh and en variants, same index = same meaning). */
  acts: { zh: string; en: string }[];
  /** Mutually exclusive circumstance levels (amount, injury), one drawn per case. */
  levels?: Circumstance[];
  /** A confusable charge (by index) a group may prefer. */
  sibling?: number;
  /** Whether terms above the thresholds become life imprisonment / death. */
  severe?: boolean;
}

const AMOUNT: Circumstance[] = [
  { zh: '数额较大', en: 'a relatively large amount', factor: 1 },
  { zh: '数额巨大', en: 'a huge amount', factor: 2.5 },
  { zh: '数额特别巨大', en: 'an especially huge amount', factor: 5 },
];
const INJURY: Circumstance[] = [
  { zh: '致一人轻伤', en: 'causing minor injury', factor: 1 },
  { zh: '致一人重伤', en: 'causing serious injury', factor: 2.5 },
  { zh: '致一人死亡', en: 'causing a death', factor: 4 },
];
const DRUGS: Circumstance[] = [
  { zh: '海洛因十克', en: 'ten grams of heroin', factor: 1 },
  { zh: '海洛因五十克', en: 'fifty grams of heroin', factor: 2.5 },
  { zh: '海洛因一千克', en: 'one kilogram of heroin', factor: 5 },
];

/** The charge catalogue: names, severities and articles follow the PRC Criminal Law. */
export const CHARGES: ChargeSpec[] = [
  {
    zh: '危险驾驶', en: 'dangerous driving', severity: 1, baseMonths: 3, article: 133, sibling: 1,
    acts: [{ zh: '醉酒驾驶机动车在道路上行驶', en: 'drove a car on the road while drunk' }, { zh: '酒后驾驶小型轿车被查获', en: 'was caught driving after drinking' }],
  },
  {
    zh: '交通肇事', en: 'traffic accident', severity: 2, baseMonths: 14, article: 133, sibling: 0,
    acts: [{ zh: '驾驶货车违章行驶发生交通事故', en: 'drove a truck against the rules and caused a crash' }, { zh: '驾车超速撞倒行人后逃逸', en: 'sped, hit a pedestrian and fled' }],
    levels: INJURY,
  },
  {
    zh: '盗窃', en: 'theft', severity: 2, baseMonths: 9, article: 264, sibling: 3,
    acts: [{ zh: '秘密窃取他人财物', en: 'secretly stole property of others' }, { zh: '入户盗走被害人手机和现金', en: 'broke into a home and stole a phone and cash' }],
    levels: AMOUNT,
  },
  {
    zh: '诈骗', en: 'fraud', severity: 3, baseMonths: 16, article: 266, sibling: 2,
    acts: [{ zh: '虚构事实骗取被害人钱款', en: 'invented facts to cheat the victim of money' }, { zh: '冒充客服诈骗被害人转账', en: 'posed as customer service to trick the victim into a transfer' }],
    levels: AMOUNT,
  },
  {
    zh: '寻衅滋事', en: 'picking quarrels', severity: 2, baseMonths: 10, article: 293, sibling: 5,
    acts: [{ zh: '在公共场所随意殴打他人', en: 'beat people at random in a public place' }, { zh: '酒后在饭店起哄闹事', en: 'made trouble in a restaurant after drinking' }],
  },
  {
    zh: '故意伤害', en: 'intentional injury', severity: 3, baseMonths: 20, article: 234, sibling: 4,
    acts: [{ zh: '因琐事持刀捅伤被害人', en: 'stabbed the victim with a knife over a trifle' }, { zh: '用木棒击打被害人头部', en: 'hit the victim on the head with a stick' }],
    levels: INJURY,
  },
  {
    zh: '抢劫', en: 'robbery', severity: 4, baseMonths: 48, article: 263, sibling: 2, severe: true,
    acts: [{ zh: '持刀威胁被害人劫取财物', en: 'threatened the victim with a knife and took property' }, { zh: '采用暴力手段抢走被害人挎包', en: 'used violence to snatch the victim bag' }],
    levels: AMOUNT,
  },
  {
    zh: '贩卖毒品', en: 'drug trafficking', severity: 4, baseMonths: 40, article: 347, severe: true,
    acts: [{ zh: '向他人贩卖毒品', en: 'sold drugs to others' }, { zh: '在宾馆内出售毒品给吸毒人员', en: 'sold drugs to users in a hotel' }],
    levels: DRUGS,
  },
  {
    zh: '故意杀人', en: 'intentional homicide', severity: 5, baseMonths: 130, article: 232, sibling: 5, severe: true,
    acts: [{ zh: '持刀故意杀害被害人', en: 'killed the victim with a knife on purpose' }, { zh: '投毒致被害人死亡', en: 'poisoned the victim to death' }],
  },
  {
    zh: '强奸', en: 'rape', severity: 4, baseMonths: 50, article: 236, severe: true,
    acts: [{ zh: '违背妇女意志强行与其发生性关系', en: 'forced sexual intercourse against her will' }, { zh: '采用暴力手段强奸被害人', en: 'raped the victim using violence' }],
  },
];

/** Circumstances any case may have, each drawn independently with probability 0.25. */
export const MODIFIERS: Circumstance[] = [
  { zh: '案发后主动投案自首', en: 'surrendered voluntarily after the crime', factor: 0.7 },
  { zh: '系累犯', en: 'is a recidivist', factor: 1.5 },
  { zh: '认罪认罚', en: 'pleaded guilty and accepted punishment', factor: 0.85 },
  { zh: '已赔偿并取得被害人谅解', en: 'compensated the victim and was forgiven', factor: 0.8 },
];

export const REGIONS = ['Beijing', 'Liaoning', 'Hunan', 'Guangdong', 'Sichuan', 'Guangxi', 'Zhejiang'];
const REGIONS_ZH: Record<string, string> = {
  Beijing: '北京', Liaoning: '辽宁', Hunan: '湖南', Guangdong: '广东', Sichuan: '四川', Guangxi: '广西', Zhejiang: '浙江',
};

export interface InjectionOptions {
  /** Strength of regional tendencies: terms scale by up to exp(±region). Default 0. */
  region?: number;
  /** Strength of gender tendencies. Default 0. */
  gender?: number;
  /**
   * How charge choices follow the same tendencies: a group picks the sibling charge with
   * probability chargeFlip · strength · (τ_g + 1)/2 · m(severity), capped at 0.9. Default 0.5.
   */
  chargeFlip?: number;
  /**
   * m(severity) = max(0, 1 + severitySlope · (3 − severity) / 2): a positive slope makes
   * lighter charges more inconsistent (the paper's finding), a negative one heavier. Default 0.
   */
  severitySlope?: number;
}

export interface SyntheticOptions {
  count: number;
  seed?: number;
  language?: 'zh' | 'en';
  /** Region names (default the 7 FairLex CAIL regions) and their relative sizes. */
  regions?: string[];
  regionWeights?: number[];
  /** Share of male defendants (CAIL is mostly male). Default 0.8. */
  maleShare?: number;
  years?: [number, number];
  inject?: InjectionOptions;
  /** Term noise: log-normal σ shared by every judge. Default 0.1. */
  noise?: number;
  /** Write the region and gender into the fact text. Default false. */
  groupCuesInText?: boolean;
  /** Fixed terms at or above these become life imprisonment / death for severe charges. */
  lifeThresholdMonths?: number;
  deathThresholdMonths?: number;
  /** Fixed-term cap in months (PRC: 15 years for one offence). Default 180. */
  maxFixedMonths?: number;
  /**
   * Share of cases with a second, different charge (a second act in the text). Each charge
   * gets its own term (same modifiers, same group tendency); they are combined as PRC
   * Art. 69 does in spirit: death or life if either is, else the longer term plus half the
   * shorter, capped at `maxCombinedMonths`. The graver charge comes first. Default 0.
   */
  multiChargeRate?: number;
  /** Cap of a combined fixed term (PRC Art. 69: 20 years). Default 240. */
  maxCombinedMonths?: number;
}

/** τ spread evenly over [-1, 1]; one group gets 0. */
function tendencies(n: number): number[] {
  if (n === 1) return [0];
  return Array.from({ length: n }, (_, i) => -1 + (2 * i) / (n - 1));
}

export function severityModulation(severity: number, slope: number): number {
  return Math.max(0, 1 + (slope * (3 - severity)) / 2);
}

function pickWeighted(rng: Rng, weights: number[]): number {
  const total = weights.reduce((a, b) => a + b, 0);
  let u = rng.next() * total;
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i]!;
    if (u < 0) return i;
  }
  return weights.length - 1;
}

function validateSynthetic(o: SyntheticOptions): void {
  if (!Number.isInteger(o.count) || o.count < 1) throw new Error(`generateCases: count must be a positive integer, got ${o.count}`);
  const regions = o.regions ?? REGIONS;
  if (regions.length < 1) throw new Error('generateCases: regions must not be empty');
  if (o.regionWeights && o.regionWeights.length !== regions.length) {
    throw new Error(`generateCases: regionWeights has ${o.regionWeights.length} entries for ${regions.length} regions`);
  }
  for (const k of ['region', 'gender', 'chargeFlip'] as const) {
    const v = o.inject?.[k];
    if (v !== undefined && !(v >= 0)) throw new Error(`generateCases: inject.${k} must be ≥ 0, got ${v}`);
  }
  if (o.maleShare !== undefined && !(o.maleShare >= 0 && o.maleShare <= 1)) throw new Error(`generateCases: maleShare must be in [0, 1], got ${o.maleShare}`);
  if (o.multiChargeRate !== undefined && !(o.multiChargeRate >= 0 && o.multiChargeRate <= 1)) throw new Error(`generateCases: multiChargeRate must be in [0, 1], got ${o.multiChargeRate}`);
}

/** Combines two charges' sentences: death or life if either is, else max + min / 2, capped. */
export function combineTerms(a: Term, b: Term, capMonths = 240): Term {
  if (a.death || b.death) return { months: 0, life: false, death: true };
  if (a.life || b.life) return { months: 0, life: true, death: false };
  const hi = Math.max(a.months, b.months);
  const lo = Math.min(a.months, b.months);
  return { months: Math.min(capMonths, Math.round(hi + lo / 2)), life: false, death: false };
}

/** Generates `count` cases. Same options and seed → the same cases. */
export function generateCases(options: SyntheticOptions): JudgmentCase[] {
  validateSynthetic(options);
  const rng = createRng(options.seed ?? 1);
  const lang = options.language ?? 'zh';
  const regions = options.regions ?? REGIONS;
  const regionWeights = options.regionWeights ?? regions.map((_, i) => 1 / (1 + 0.25 * i));
  const tauRegion = tendencies(regions.length);
  const tauGender: Record<string, number> = { male: 1, female: -1 };
  const inj = options.inject ?? {};
  const aRegion = inj.region ?? 0;
  const aGender = inj.gender ?? 0;
  const flip = inj.chargeFlip ?? 0.5;
  const slope = inj.severitySlope ?? 0;
  const [y0, y1] = options.years ?? [2013, 2018];
  const noise = options.noise ?? 0.1;
  const lifeAt = options.lifeThresholdMonths ?? 240;
  const deathAt = options.deathThresholdMonths ?? 420;
  const cap = options.maxFixedMonths ?? 180;
  const maleShare = options.maleShare ?? 0.8;
  const multiRate = options.multiChargeRate ?? 0;
  const combinedCap = options.maxCombinedMonths ?? 240;

  const cases: JudgmentCase[] = [];
  for (let i = 0; i < options.count; i++) {
    const chargeIdx = rng.int(0, CHARGES.length);
    const charge = CHARGES[chargeIdx]!;
    const ri = pickWeighted(rng, regionWeights);
    const region = regions[ri]!;
    const gender = rng.next() < maleShare ? 'male' : 'female';
    const year = rng.int(y0, y1 + 1);
    const act = charge.acts[rng.int(0, charge.acts.length)]!;
    const level = charge.levels ? charge.levels[rng.int(0, charge.levels.length)]! : undefined;
    const mods = MODIFIERS.filter(() => rng.next() < 0.25);

    // The lawful outcome: everything here is visible in the text.
    let logMonths = Math.log(charge.baseMonths) + Math.log(level?.factor ?? 1);
    for (const m of mods) logMonths += Math.log(m.factor);
    const z = rng.normalArray(1)[0]!;
    logMonths += noise * z;

    // The group's tendency: invisible in the text.
    const m = severityModulation(charge.severity, slope);
    const tr = tauRegion[ri]!;
    const tg = tauGender[gender]!;
    logMonths += (aRegion * tr + aGender * tg) * m;
    const pFlip = Math.min(0.9, flip * m * (aRegion * (tr + 1) * 0.5 + aGender * (tg + 1) * 0.5));
    let finalIdx = chargeIdx;
    if (charge.sibling !== undefined && rng.next() < pFlip) finalIdx = charge.sibling;
    const finalCharge = CHARGES[finalIdx]!;

    const toTerm = (spec: ChargeSpec, logM: number): Term => {
      const months = Math.max(1, Math.round(Math.exp(logM)));
      if (spec.severe && months >= deathAt) return { months: 0, life: false, death: true };
      if (spec.severe && months >= lifeAt) return { months: 0, life: true, death: false };
      return { months: Math.min(months, cap), life: false, death: false };
    };
    let term = toTerm(charge, logMonths);

    const month = rng.int(1, 13);
    const day = rng.int(1, 29);
    // A second charge (drawn only when asked, so single-charge data keep their random stream).
    let second: { spec: ChargeSpec; act: { zh: string; en: string }; level?: Circumstance } | undefined;
    if (multiRate > 0 && rng.next() < multiRate) {
      const idx2 = (chargeIdx + 1 + rng.int(0, CHARGES.length - 1)) % CHARGES.length;
      const spec2 = CHARGES[idx2]!;
      const act2 = spec2.acts[rng.int(0, spec2.acts.length)]!;
      const level2 = spec2.levels ? spec2.levels[rng.int(0, spec2.levels.length)]! : undefined;
      let log2 = Math.log(spec2.baseMonths) + Math.log(level2?.factor ?? 1);
      for (const md of mods) log2 += Math.log(md.factor);
      log2 += noise * rng.normalArray(1)[0]!;
      const m2 = severityModulation(spec2.severity, slope);
      log2 += (aRegion * tr + aGender * tg) * m2;
      const pFlip2 = Math.min(0.9, flip * m2 * (aRegion * (tr + 1) * 0.5 + aGender * (tg + 1) * 0.5));
      const final2 = spec2.sibling !== undefined && rng.next() < pFlip2 ? CHARGES[spec2.sibling]! : spec2;
      term = combineTerms(term, toTerm(spec2, log2), combinedCap);
      second = { spec: final2, act: act2, ...(level2 ? { level: level2 } : {}) };
    }
    let fact: string;
    if (lang === 'zh') {
      const cue = options.groupCuesInText ? `${REGIONS_ZH[region] ?? region}某区人民检察院指控：被告人（${gender === 'male' ? '男' : '女'}）` : '公诉机关指控：被告人';
      const more = second ? `；另查明，被告人还${second.act.zh}${second.level ? `，${second.level.zh}` : ''}` : '';
      fact = `${cue}于${year}年${month}月${day}日${act.zh}${level ? `，${level.zh}` : ''}${mods.map((md) => `，${md.zh}`).join('')}${more}。`;
    } else {
      const cue = options.groupCuesInText ? `The ${region} procuratorate alleges that the ${gender} defendant` : 'The prosecution alleges that the defendant';
      const more = second ? `; it was further found that the defendant also ${second.act.en}${second.level ? `, ${second.level.en}` : ''}` : '';
      fact = `${cue} on ${year}-${month}-${day} ${act.en}${level ? `, ${level.en}` : ''}${mods.map((md) => `, ${md.en}`).join('')}${more}.`;
    }
    // The graver charge first: it is the primary charge (breakdowns, single-label models).
    const specs = [finalCharge];
    if (second && second.spec !== finalCharge) {
      if (second.spec.severity > finalCharge.severity) specs.unshift(second.spec);
      else specs.push(second.spec);
    }
    cases.push({
      id: `syn-${i}`,
      fact,
      charges: specs.map((c) => (lang === 'zh' ? c.zh : c.en)),
      articles: [...new Set(specs.map((c) => c.article))],
      term,
      groups: { region, gender },
      year,
      severity: specs[0]!.severity,
    });
  }
  return cases;
}
