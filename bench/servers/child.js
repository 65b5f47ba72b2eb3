/**
 * What every benchmark server does as a child of a server bench (gateway, middleware): tell the parent
 * where it listens (over the IPC channel `fork` opens), tell it the CPU time used so far when asked,
 * stop cleanly on SIGTERM, and never outlive the parent.
 */

/** Until {@link serve} takes over, a parent that goes away (even mid-start) ends this process at once. */
const orphaned = () => process.exit(1);
process.once('disconnect', orphaned);

/**
 * Sends `{ ready: info }` to the parent, answers each `'cpu'` message with `{ cpu: microseconds }`
 * (user + system), and arranges `stop` to run on SIGTERM or when the parent goes.
 */
export function serve(info, stop) {
  let stopping = false;
  const exit = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await stop();
    } finally {
      process.exit(0);
    }
  };
  process.once('SIGTERM', exit);
  process.off('disconnect', orphaned);
  process.once('disconnect', exit);
  process.on('message', (message) => {
    if (message !== 'cpu') return;
    const { user, system } = process.cpuUsage();
    process.send({ cpu: user + system });
  });
  process.send({ ready: info });
}

/** The first message the parent sends (the settings a server needs before it can start). */
export const settings = () => new Promise((resolve) => process.once('message', resolve));
