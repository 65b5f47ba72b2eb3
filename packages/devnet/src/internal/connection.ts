/**
 * The byte pipes under LDK's BOLT 8 transport. A {@link Connection} feeds a {@link Wire}'s bytes into a
 * PeerManager and hands the PeerManager's bytes to the wire; a wire is a loopback TCP socket or one end
 * of an in-memory pair. Both run the same encrypted protocol: only the pipe differs.
 */
import type { Socket } from 'node:net';
import * as ldk from 'lightningdevkit';

export interface Wire {
  /** Starts delivering incoming bytes and the far end's close. Called once. */
  attach(onData: (data: Uint8Array) => void, onClose: () => void): void;
  write(data: Uint8Array): void;
  /** Stops delivering incoming bytes until {@link resume}: LDK's back-pressure. */
  pause(): void;
  resume(): void;
  destroy(): void;
}

class MemoryEnd implements Wire {
  peer: MemoryEnd | undefined;
  private readonly queue: Uint8Array[] = [];
  private onData: ((data: Uint8Array) => void) | undefined;
  private onClose: (() => void) | undefined;
  private paused = false;
  private closed = false;
  private flushing: NodeJS.Immediate | undefined;

  attach(onData: (data: Uint8Array) => void, onClose: () => void): void {
    this.onData = onData;
    this.onClose = onClose;
    this.schedule();
  }

  write(data: Uint8Array): void {
    if (!this.closed) this.peer?.enqueue(data);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.schedule();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    const peer = this.peer;
    if (peer) setImmediate(() => peer.farEndClosed());
  }

  private enqueue(data: Uint8Array): void {
    if (this.closed) return;
    this.queue.push(data);
    this.schedule();
  }

  // Delivery is always deferred: LDK calls `send_data` from inside PeerManager methods, and the far
  // PeerManager must not be entered from there.
  private schedule(): void {
    if (this.flushing || this.paused || !this.onData || this.queue.length === 0) return;
    // Left ref'd: it runs once and is gone, and Node lets an unref'd Immediate wait for the next
    // timer (up to the node loop's 100 ms) instead of running at once.
    this.flushing = setImmediate(() => {
      this.flushing = undefined;
      while (!this.paused && !this.closed && this.queue.length > 0) this.onData?.(this.queue.shift()!);
    });
  }

  private farEndClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose?.();
  }
}

/** Two wires joined back to back in this process. */
export function memoryPair(): [Wire, Wire] {
  const a = new MemoryEnd();
  const b = new MemoryEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** A wire over a connected TCP socket. The socket does not keep the process alive. */
export function tcpWire(socket: Socket): Wire {
  socket.setNoDelay(true);
  socket.unref();
  return {
    attach(onData, onClose) {
      socket.on('data', (chunk: Buffer) =>
        onData(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)),
      );
      socket.on('close', onClose);
      // 'close' follows every error; the error itself needs no handling beyond that.
      socket.on('error', () => {});
    },
    write: (data) => socket.write(data),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    destroy: () => socket.destroy(),
  };
}

let nextId = 1n;

/** One peer connection of a PeerManager. */
export class Connection {
  readonly descriptor: ldk.SocketDescriptor;
  private closed = false;

  constructor(
    private readonly peers: ldk.PeerManager,
    private readonly wire: Wire,
    /** Called after LDK has new work: bytes read or the connection gone. */
    private readonly activity: () => void,
    private readonly forget: (connection: Connection) => void,
  ) {
    const id = nextId++;
    const self = this;
    this.descriptor = ldk.SocketDescriptor.new_impl({
      send_data(data: Uint8Array, resumeRead: boolean): number {
        if (self.closed) return 0;
        if (resumeRead) wire.resume();
        // `data` views WebAssembly memory that LDK reuses: copy before it leaves this call.
        wire.write(Uint8Array.from(data));
        return data.length;
      },
      disconnect_socket(): void {
        self.drop();
      },
      eq(other: ldk.SocketDescriptor): boolean {
        return other.hash() === id;
      },
      hash(): bigint {
        return id;
      },
    });
    wire.attach(
      (data) => this.receive(data),
      () => this.farEndClosed(),
    );
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes LDK wants sent first on an outbound connection (BOLT 8 act one). */
  start(initial: Uint8Array): void {
    this.wire.write(Uint8Array.from(initial));
  }

  /** Ends the connection from this side without telling LDK (LDK asked for it, or already forgot it). */
  drop(): void {
    if (this.closed) return;
    this.closed = true;
    this.wire.destroy();
    this.forget(this);
  }

  private receive(data: Uint8Array): void {
    if (this.closed) return;
    const result = this.peers.read_event(this.descriptor, data);
    // On an error LDK has already forgotten this socket; it must not hear of it again.
    if (!result.is_ok()) this.drop();
    else if ((result as ldk.Result_boolPeerHandleErrorZ_OK).res) this.wire.pause();
    this.activity();
  }

  private farEndClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.forget(this);
    this.peers.socket_disconnected(this.descriptor);
    this.activity();
  }
}
