// Page sizes by bytes: a page of `sync` or `syncLatest` asks for as many records as fit the byte
// budget at the sizes seen so far, so that small records come in few round trips and large ones
// never make a reply (or the memory that holds it) grow with the record count alone.

/** Bytes a page aims at. */
export const PAGE_BYTES: number = 256 * 1024;
const FIRST_PAGE = 64;
const MIN_PAGE = 16;

/** Suggests how many records to ask for, from the average size of the records read so far. */
export class PageSizer {
  readonly #max: number;
  #bytes = 0;
  #records = 0;

  constructor(max: number) {
    this.#max = max;
  }

  /** Records to ask for next. */
  next(): number {
    if (this.#records === 0) return Math.min(this.#max, FIRST_PAGE);
    const average = this.#bytes / this.#records;
    return Math.max(Math.min(MIN_PAGE, this.#max), Math.min(this.#max, Math.floor(PAGE_BYTES / Math.max(1, average))));
  }

  /** Records the size of what a page held. Recent pages weigh the most. */
  observe(bytes: number, records: number): void {
    if (records === 0) return;
    if (this.#records > 4096) {
      this.#bytes /= 2;
      this.#records /= 2;
    }
    this.#bytes += bytes;
    this.#records += records;
  }
}
