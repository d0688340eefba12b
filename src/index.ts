/**
 * neardup's library API. The `neardup` command is a thin layer over these functions.
 *
 * @example
 * import { audit } from 'neardup';
 * const { summary } = await audit({ upstream: ['data/pretrain'], downstream: ['data/cifar-test'], out: 'out' });
 */
export { audit, scan, embed, index, match, report, purge, prepare, type AuditResult, type RunHooks, type PurgeOptions, type PrepareResult } from './audit/run.js';
export { mergeShards } from './report/merge.js';
export { dedup, groupDuplicates, type DedupResult, type DedupGroup } from './dedup/run.js';
export { loadPipeline, PIPELINE_COMMANDS, type Pipeline } from './config/pipeline.js';
export { resolveOptions, RUNTIME_NAMES, KEEP_POLICIES, type RawOptions, type ResolvedOptions } from './config/options.js';
export { loadModel, type ModelCard, type LoadedModel } from './embed/model-card.js';
export { createRuntime, RUNTIMES } from './embed/backend/index.js';
export type { EmbedRuntime, RuntimeOptions } from './embed/runtime.js';
export { VIEWS } from './embed/views.js';
// The verify stage on its own: align a pair of 64×64 luma planes (see ARCHITECTURE.md, "verify").
export { createAligner, referenceAligner, type Aligner } from './verify/aligner.js';
export { GEOMETRY, VERIFIER_ID, describeAffine, type Alignment, type Affine } from './verify/geometry.js';
export { lumaOfRgb } from './verify/luma.js';
export type { AlignmentRecord, DecisionRule } from './verify/run.js';
// The contamination certificate (certificate.json, its report section, `certificate --check`).
export { buildCertificate, writeCertificate, checkCertificate, readCertificate, renderCertificateHtml, CERTIFICATE_FORMAT } from './certificate/index.js';
export type { Certificate, CertificateCheck, CheckOptions, DownstreamSet, SourceFingerprint } from './certificate/index.js';
export { Catalog } from './state/catalog.js';
export type { Summary } from './report/write.js';
export type { Progress } from './util/progress-types.js';
export { NeardupError, ConfigError, ModelError, StateError, IndexError, EXIT } from './errors.js';
export { VERSION } from './version.js';
