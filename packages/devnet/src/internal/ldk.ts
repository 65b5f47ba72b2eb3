/** Loads LDK's WebAssembly once per process; every node waits on the same promise. */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import * as ldk from 'lightningdevkit';

let loading: Promise<void> | undefined;

export function load(): Promise<void> {
  loading ??= (async () => {
    const path = createRequire(import.meta.url).resolve('lightningdevkit/liblightningjs.wasm');
    const wasm = await readFile(path);
    // The bindings announce themselves on stdout while initializing; a CLI printing JSON on stdout
    // (`l402 devnet`) must not get that line, so it alone is dropped.
    const log = console.log;
    console.log = (...args: unknown[]) => {
      if (!(typeof args[0] === 'string' && args[0].startsWith('Loaded LDK-Java Bindings'))) log(...args);
    };
    try {
      await ldk.initializeWasmFromBinary(wasm);
    } finally {
      console.log = log;
    }
  })();
  return loading;
}
