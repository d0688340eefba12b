/** What stages report to; the CLI renders it as a progress bar, the library default is silent. */
export interface Progress {
  start(stage: string, total: number | undefined): void;
  tick(n?: number): void;
  done(summary?: string): void;
}

export const SILENT: Progress = Object.freeze({ start() {}, tick() {}, done() {} });
