export type { JudgmentCase, Term, TermKind } from './types.js';
export { termKind, TERM_KINDS } from './types.js';
export {
  CaseFormatError,
  describeExclusions,
  FAIRLEX_GENDERS,
  FAIRLEX_REGIONS,
  FAIRLEX_TERM_CLASSES,
  FAIRLEX_TERM_MONTHS,
  lookupField,
  normalizeGender,
  normalizeRegion,
  parseCasesCsv,
  parseCasesJsonl,
  parseCsvRecords,
  readCases,
  toCailJsonl,
  UNRECORDED_CHARGE,
} from './readers.js';
export type { ExclusionReason, ReadOptions, ReadReport, ReadResult } from './readers.js';
export { PROVINCES, findPlaces, provinceByName } from './places.js';
export type { PlaceMatch, Province } from './places.js';
export { extractDefendants, extractGender, extractGenders, extractRegion, extractYear, normalizeFact } from './attributes.js';
export type { AttributeSource, Extracted } from './attributes.js';
export { attributeValue, attributeValues, caseYear, DERIVED_ATTRIBUTES, describeCoverage, periodLabel, withAttribute } from './groups.js';
export type { AttributeCoverage, AttributeOptions, AttributeValue } from './groups.js';
export { CHARGE_ALIASES, LAW_ARTICLES, LAW_CHARGES, lawArticle, lawCharge, normalizeChargeName } from './criminal-law.js';
export type { ArticleEntry, ChargeEntry, Penalty } from './criminal-law.js';
export { caseSeverity, describePenalty, heavierPenalty, penaltyScore, SEVERITY_BANDS, severityBand, severityScore } from './severity.js';
export type { CaseSeverity, SeverityBand } from './severity.js';
export { tokenize, baseTokens, detectMode, hashToken, hashedFeatures } from './tokenize.js';
export type { TokenizeOptions, TokenMode } from './tokenize.js';
export { generateCases, combineTerms, CHARGES, MODIFIERS, REGIONS, severityModulation } from './synthetic.js';
export type { ChargeSpec, Circumstance, InjectionOptions, SyntheticOptions } from './synthetic.js';
export { HashedNgramModel } from './models/hashed-ngram.js';
export type { HashedNgramOptions } from './models/hashed-ngram.js';
export { TextCnnModel } from './models/text-cnn.js';
export type { TextCnnOptions } from './models/text-cnn.js';
export { createModel, registerModel, modelTypes } from './models/registry.js';
export type { ModelSpec } from './models/registry.js';
export type { LjpModel, LjpOutputs, PreparedTexts, EncodedLabels } from './models/types.js';
export { chargeVocabulary, encodeLabels, hasMultiCharge } from './labels.js';
export type { EncodeOptions } from './labels.js';
export { gradientReversal } from './gradient-reversal.js';
export { trainPanel, predictPanel, panelOutputs, combineJudgeOutputs, sampleLosses, chargeSetsFromLogits, judgeForward, DEBIAS_METHODS } from './train.js';
export type { TrainOptions, TrainResult, DebiasOptions, DebiasMethod, JudgeData, JudgeOutputs, JudgePrediction, PredictOptions } from './train.js';
export { planJudges, randomSplitJudges } from './judges.js';
export type { SamplingOptions, JudgePlan } from './judges.js';
export {
  caseTermDisagreement,
  caseChargeDisagreement,
  jaccardDistance,
  termDistance,
  caseScores,
  buildFrame,
  LincoFrame,
  METRICS,
  METRIC_RANGE,
} from './metric.js';
export type { ChargeDecision, ChargeLabel, TermMetricOptions, ChargeMetricOptions, MetricOptions, MetricName, MetricValues, GroupValues, PanelPredictions, CaseScores, FrameInput } from './metric.js';
export {
  bootstrapMean,
  bootstrapDifference,
  bootstrapSpearman,
  bootstrapVarianceOfMean,
  clampInterval,
  compareWithNull,
  differenceOfEstimates,
  incompleteBeta,
  logGamma,
  sampleVariance,
  studentTCdf,
  studentTQuantile,
  spearman,
  ranks,
  mean,
  quantileSorted,
  tInterval,
} from './stats.js';
export type { BootstrapOptions, Estimate, NullComparison, TEstimate } from './stats.js';
export { breakdownTables, breakdownValues } from './breakdowns.js';
export type { BreakdownName } from './breakdowns.js';
export { checkBaselineRepeats, linco, lincoRun, lincoBeforeAfter, MIN_NULL_PANELS } from './linco.js';
export type { LincoOptions, LincoProgress, LincoRun, BeforeAfter } from './linco.js';
export { analyzeCases, caseExcess, subsetRows } from './analyze.js';
export type { AnalyzeOptions, AttributeResult, Interval, LincoReport, SubsetRow } from './analyze.js';
export { compareDebiasing } from './debias.js';
export type { DebiasComparison, DebiasRow, DebiasSummary, DebiasVariant, SeedInterval } from './debias.js';
export { ANALYZE_FIELDS, checkAnalyzeConfig, checkLincoConfig, debiasSettings, LINCO_FIELDS, LINCO_PRESETS, lincoOptions, loadLincoCases, resolveLincoConfig } from './config.js';
export type { LincoPreset, Preset } from './config.js';
export { analyzeLinco, runLinco, runLincoDetailed } from './run.js';
export type { RunLincoOptions, RunProgress } from './run.js';
export { embeddingBag, embeddingBagReference } from './models/embedding-bag.js';
export type { BagIndex } from './models/embedding-bag.js';
export { isLincoInputError, LincoInputError } from './errors.js';
