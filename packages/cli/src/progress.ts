/**
 * The download progress bar `l402 get -o FILE` draws on stderr when stderr is a terminal: one line,
 * redrawn in place at most every 100 ms, ended with a newline when the body is complete.
 *
 * @example
 * const bar = Progress.create({ total: 10_485_760, write: (s) => process.stderr.write(s) });
 * bar.add(chunk.length); … bar.done();
 */

/** Bodies smaller than this (when their length is known) are written without a bar. */
export const MIN_BYTES = 1 << 20;
const WIDTH = 30;
const EVERY_MS = 100;

/**
 * Whether `l402 get` draws a bar: writing to a file, stderr a terminal, not `-s`, and the body large
 * or of unknown length.
 *
 * @example
 * wanted({ toFile: true, tty: process.stderr.isTTY, silent: false, total: 5_000_000 }); // true
 */
export function wanted(o: { toFile: boolean; tty: boolean; silent: boolean; total: number | undefined }) {
  return o.toFile && o.tty && !o.silent && (o.total === undefined || o.total >= MIN_BYTES);
}

/** `1.5 MiB`, `830 KiB`, `12 B`. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/**
 * One line of the bar: with a known total `[#####…]  45%  4.5 MiB / 10 MiB`, else the bytes so far.
 *
 * @example
 * render(512, 1024); // '\r[###############               ]  50%  512 B / 1.0 KiB'
 */
export function render(done: number, total: number | undefined): string {
  if (total === undefined || total <= 0) return `\r${bytes(done)} received`;
  const ratio = Math.min(1, done / total);
  const filled = Math.round(ratio * WIDTH);
  const percent = `${Math.floor(ratio * 100)}%`.padStart(4);
  return `\r[${'#'.repeat(filled)}${' '.repeat(WIDTH - filled)}] ${percent}  ${bytes(done)} / ${bytes(total)}`;
}

/** A bar being drawn. */
export interface Bar {
  add(n: number): void;
  done(): void;
}

/**
 * A bar over `total` bytes (unknown when `undefined`) that writes through `write`.
 *
 * @example
 * const bar = create({ total: undefined, write: (s) => process.stderr.write(s) });
 */
export function create(o: {
  total: number | undefined;
  write: (s: string) => void;
  now?: () => number;
}): Bar {
  const now = o.now ?? Date.now;
  let received = 0;
  let last = Number.NEGATIVE_INFINITY;
  let width = 0;
  const draw = () => {
    const line = render(received, o.total);
    // Pad over a longer previous line (the unknown-length form grows and shrinks).
    o.write(line.padEnd(width));
    width = line.length;
  };
  return {
    add(n) {
      received += n;
      const t = now();
      if (t - last >= EVERY_MS) {
        last = t;
        draw();
      }
    },
    done() {
      draw();
      o.write('\n');
    },
  };
}
