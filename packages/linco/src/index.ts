export type { JudgmentCase, Term, TermKind } from './types.js';
export { termKind, TERM_KINDS } from './types.js';
export { CaseFormatError, parseCailJsonl, parseCasesCsv, parseCsvRecords, readCases, toCailJsonl } from './readers.js';
export type { ReadOptions } from './readers.js';
export { tokenize, baseTokens, detectMode, hashToken, hashedFeatures } from './tokenize.js';
export type { TokenizeOptions, TokenMode } from './tokenize.js';
export { generateCases, combineTerms, CHARGES, MODIFIERS, REGIONS, severityBand, severityModulation, chargeSeverity } from './synthetic.js';
export type { ChargeSpec, Circumstance, InjectionOptions, SyntheticOptions, SeverityBand } from './synthetic.js';
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
export { trainPanel, predictPanel, panelOutputs, combineJudgeOutputs, sampleLosses, chargeSetsFromLogits } from './train.js';
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
} from './metric.js';
export type { ChargeDecision, ChargeLabel, TermMetricOptions, ChargeMetricOptions, MetricOptions, MetricName, MetricValues, GroupValues, PanelPredictions, CaseScores, FrameInput } from './metric.js';
export {
  bootstrapMean,
  bootstrapDifference,
  bootstrapVarianceOfMean,
  compareWithNull,
  incompleteBeta,
  logGamma,
  sampleVariance,
  studentTCdf,
  studentTQuantile,
  spearman,
  ranks,
  mean,
  quantileSorted,
} from './stats.js';
export type { BootstrapOptions, Estimate, NullComparison } from './stats.js';
export { breakdownValue, breakdownValues } from './breakdowns.js';
export type { BreakdownName } from './breakdowns.js';
export { linco, lincoRun, lincoBeforeAfter } from './linco.js';
export type { LincoOptions, LincoProgress, LincoRun, BeforeAfter } from './linco.js';
export { runLinco, resolveLincoConfig, loadLincoCases, LincoConfigError, PRESETS } from './run.js';
export type { LincoConfig, LincoConfigInput, LincoData, RunLincoOptions } from './run.js';
export { embeddingBag, embeddingBagReference } from './models/embedding-bag.js';
export type { BagIndex } from './models/embedding-bag.js';
export { JsAdam } from './optimizer.js';
export type { AdamOptions } from './optimizer.js';
