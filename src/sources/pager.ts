import type { ListedEntry, ListingError, ListingPage } from './list.js';

/** Gathers what a source listing finds into pages of a fixed size (files and errors together). */
export class Pager {
  private page: ListingPage = { files: [], errors: [] };

  constructor(private readonly size: number) {}

  file(entry: ListedEntry): void {
    this.page.files.push(entry);
  }

  error(entry: ListingError): void {
    this.page.errors.push(entry);
  }

  /** The current page once it is full; a new one starts. */
  *full(): Generator<ListingPage> {
    if (this.count() >= this.size) yield this.take();
  }

  /** Whatever is left when the listing ends. */
  *rest(): Generator<ListingPage> {
    if (this.count() > 0) yield this.take();
  }

  private count(): number {
    return this.page.files.length + this.page.errors.length;
  }

  private take(): ListingPage {
    const page = this.page;
    this.page = { files: [], errors: [] };
    return page;
  }
}
