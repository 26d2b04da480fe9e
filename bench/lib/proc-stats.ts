import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

// Linux /proc readings of a server process. Memory in KiB as the kernel reports it.

export interface MemStatus {
  /** VmHWM: peak resident set since start (or since the last resetPeak). */
  hwmKiB: number;
  /** VmRSS: resident now. */
  rssKiB: number;
  rssAnonKiB: number;
  rssFileKiB: number;
  threads: number;
}

export function readMem(pid: number): MemStatus {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status);
    if (!m) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(m[1]);
  };
  return {
    hwmKiB: field('VmHWM'),
    rssKiB: field('VmRSS'),
    rssAnonKiB: field('RssAnon'),
    rssFileKiB: field('RssFile'),
    threads: field('Threads'),
  };
}

/**
 * Resets VmHWM to the current RSS (`echo 5 > /proc/PID/clear_refs`, Linux ≥ 4.0), so the next
 * reading is the peak of one phase. Returns false when the kernel or permissions refuse.
 */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    return false;
  }
  const { hwmKiB, rssKiB } = readMem(pid);
  return hwmKiB <= rssKiB + 1024;
}

/** CPU seconds (user + system, all threads) the process has used; assumes USER_HZ = 100. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name (which may hold spaces); utime and stime are 14 and 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

/** Busy and total jiffies of the whole machine (first line of /proc/stat). */
export function machineJiffies(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0); // guest time is already in user
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** The executable behind a pid: proof we watch the server itself, not a wrapper. */
export function exeOf(pid: number): string {
  return readlinkSync(`/proc/${pid}/exe`);
}

/** Polls VmRSS of some processes and keeps the largest reading (with its anon/file split). */
export class RssSampler {
  readonly #pids: number[];
  readonly #max = new Map<number, MemStatus>();
  #timer: NodeJS.Timeout | undefined;

  constructor(pids: number[], intervalMs = 100) {
    this.#pids = pids;
    this.#timer = setInterval(() => this.#sample(), intervalMs);
    this.#sample();
  }

  #sample(): void {
    for (const pid of this.#pids) {
      try {
        const mem = readMem(pid);
        if (mem.rssKiB > (this.#max.get(pid)?.rssKiB ?? -1)) this.#max.set(pid, mem);
      } catch {
        // the process is gone; the phase will fail on its own
      }
    }
  }

  /** Stops sampling; the largest VmRSS seen per pid. */
  stop(): Map<number, MemStatus> {
    clearInterval(this.#timer);
    this.#sample();
    return this.#max;
  }
}

/** utime+stime of the waited-for children of this process (clients that exited), in seconds. */
function reapedChildrenSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[13]) + Number(rest[14])) / 100; // cutime, cstime: fields 16 and 17
}

export interface CpuSplit {
  /** Cores used by each watched pid (1 = one core busy for the whole phase). */
  cores: Map<number, number>;
  /** Cores used by client processes (wrk, curl) that exited during the phase. */
  clients: number;
  /** Cores used by this script. */
  harness: number;
  /** Cores used by everything else on the machine: noise from other work. */
  other: number;
  /** Busy share of all the machine's cores. */
  machineBusy: number;
}

/**
 * Who used the CPU during a phase: the watched servers, the clients (children of this process that
 * exited by the end), this script, and the rest of the machine — the noise that makes a run suspect.
 */
export class CpuMeter {
  readonly #pids: number[];
  readonly #start: Map<number, number>;
  readonly #machine = machineJiffies();
  readonly #children = reapedChildrenSeconds();
  readonly #self = process.cpuUsage();
  readonly #t0 = process.hrtime.bigint();

  constructor(pids: number[]) {
    this.#pids = pids;
    this.#start = new Map(pids.map((pid) => [pid, cpuSeconds(pid)]));
  }

  stop(): CpuSplit {
    const wall = Number(process.hrtime.bigint() - this.#t0) / 1e9;
    const cores = new Map<number, number>();
    for (const pid of this.#pids) {
      try {
        cores.set(pid, (cpuSeconds(pid) - this.#start.get(pid)!) / wall);
      } catch {
        cores.set(pid, Number.NaN);
      }
    }
    const self = process.cpuUsage(this.#self);
    const harness = (self.user + self.system) / 1e6 / wall;
    const clients = (reapedChildrenSeconds() - this.#children) / wall;
    const machine = machineJiffies();
    const total = machine.total - this.#machine.total;
    const machineBusy = total > 0 ? (machine.busy - this.#machine.busy) / total : Number.NaN;
    const busyCores = machineBusy * availableParallelism();
    const servers = [...cores.values()].reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
    return { cores, clients, harness, other: Math.max(0, busyCores - servers - clients - harness), machineBusy };
  }
}

/** Busy share of all cores over `ms`: other work on the machine before a run starts. */
export async function backgroundLoad(ms = 1000): Promise<number> {
  const before = machineJiffies();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = machineJiffies();
  return (after.busy - before.busy) / Math.max(1, after.total - before.total);
}

export interface PhaseMem {
  /** VmRSS when the phase began. */
  startKiB: number;
  /** VmHWM at its end: the phase's own peak when `exact`, else the peak since the process started. */
  peakKiB: number;
  /** VmRSS when it ended. */
  endKiB: number;
  exact: boolean;
}

/**
 * Peak RSS of one process phase by phase: VmHWM is reset before each phase (when the kernel allows)
 * and read after it, and the largest reading is the peak of the whole run.
 */
export class PeakTracker {
  readonly pid: number;
  readonly phases = new Map<string, PhaseMem>();
  #wholeKiB: number;

  constructor(pid: number) {
    this.pid = pid;
    this.#wholeKiB = readMem(pid).hwmKiB;
  }

  async phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const before = readMem(this.pid);
    this.#wholeKiB = Math.max(this.#wholeKiB, before.hwmKiB);
    const exact = resetPeak(this.pid);
    try {
      return await fn();
    } finally {
      const after = readMem(this.pid);
      this.#wholeKiB = Math.max(this.#wholeKiB, after.hwmKiB);
      // A phase run again (another round) keeps its first start, its highest peak and its last end.
      const earlier = this.phases.get(name);
      this.phases.set(name, {
        startKiB: earlier?.startKiB ?? before.rssKiB,
        peakKiB: Math.max(earlier?.peakKiB ?? 0, after.hwmKiB),
        endKiB: after.rssKiB,
        exact: exact && (earlier?.exact ?? true),
      });
    }
  }

  /** The largest VmHWM seen: the peak since start, across resets. */
  wholeRunKiB(): number {
    return this.#wholeKiB;
  }
}
