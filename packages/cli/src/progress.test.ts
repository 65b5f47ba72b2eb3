import { describe, expect, it } from 'vitest';
import * as Progress from './progress.js';

describe('the download progress bar', () => {
  it('is drawn only for a file, on a terminal, without -s, for a large or unknown-length body', () => {
    const base = { toFile: true, tty: true, silent: false, total: 5_000_000 };
    expect(Progress.wanted(base)).toBe(true);
    expect(Progress.wanted({ ...base, total: undefined })).toBe(true);
    expect(Progress.wanted({ ...base, total: Progress.MIN_BYTES - 1 })).toBe(false);
    expect(Progress.wanted({ ...base, tty: false })).toBe(false);
    expect(Progress.wanted({ ...base, silent: true })).toBe(false);
    expect(Progress.wanted({ ...base, toFile: false })).toBe(false);
  });

  it('renders a bar with percent and sizes, or the bytes so far when the length is unknown', () => {
    expect(Progress.render(512, 1024)).toBe(`\r[${'#'.repeat(15)}${' '.repeat(15)}]  50%  512 B / 1.0 KiB`);
    expect(Progress.render(3 << 20, 3 << 20)).toBe(`\r[${'#'.repeat(30)}] 100%  3.0 MiB / 3.0 MiB`);
    expect(Progress.render(1536, undefined)).toBe('\r1.5 KiB received');
    expect(Progress.bytes(250 << 20)).toBe('250 MiB');
  });

  it('redraws at most every 100 ms, pads over a longer line, and ends with a newline', () => {
    const out: string[] = [];
    let t = 0;
    const bar = Progress.create({ total: undefined, write: (s) => out.push(s), now: () => t });
    bar.add(2 << 20); // drawn: the first update
    t = 50;
    bar.add(1); // not drawn: too soon
    t = 150;
    bar.add(10); // drawn
    expect(out).toEqual(['\r2.0 MiB received', '\r2.0 MiB received']);
    bar.done();
    expect(out.slice(2)).toEqual(['\r2.0 MiB received', '\n']);
    const shrinking: string[] = [];
    const small = Progress.create({ total: undefined, write: (s) => shrinking.push(s), now: () => 0 });
    small.add(5000);
    small.done();
    expect(shrinking[1]?.length).toBeGreaterThanOrEqual(shrinking[0]?.length ?? 0);
  });
});
