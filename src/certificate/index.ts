/**
 * The contamination certificate: certificate.json beside summary.json (written by every audit,
 * report and purge run), its printable section of report.html, and `neardup certificate --check`.
 */
export { buildCertificate, writeCertificate, type CertificateSummary, type CountedPair } from './build.js';
export { checkCertificate, readCertificate, type CertificateCheck, type CheckOptions, type KeyDifferences, type SideCheck, type SourceCheck } from './check.js';
export { renderCertificateHtml, CERTIFICATE_CSS } from './html.js';
export { mergeCertificates, writeMergedCertificate, type MergedMatch } from './merge.js';
export { CERTIFICATE_FORMAT, type Certificate, type CertificateEstimate, type CertificateSource, type Contamination, type DownstreamSet, type SourceFingerprint } from './types.js';
