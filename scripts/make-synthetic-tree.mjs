#!/usr/bin/env node
// Writes a seeded synthetic root filesystem of a given size, for the benchmarks.
// Usage: node scripts/make-synthetic-tree.mjs [--size 1G] [--seed 1] DIR
//
// The same size and seed always give the same tree (names, bytes, modes, mtimes). The mix
// follows a Linux root filesystem: many small text files, shared libraries and programs that
// compress about 2x, already compressed files (gzip, xz, png: they do not shrink), a few large
// files, library symlinks, hard-linked programs, empty system directories. The tree is built in
// DIR.partial and renamed to DIR when complete, so a cached DIR is always whole.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Share of the bytes per kind of file; the rest of the size goes to a few large files. */
const MIX = { text: 0.2, binary: 0.5, compressed: 0.1 };
/** Size ranges (bytes, log-uniform) per kind: text files are small, libraries larger. */
const SIZE_RANGE = { text: [150, 32 * 1024], binary: [16 * 1024, 4 * 1024 * 1024], compressed: [1024, 1024 * 1024] };
const TREE_MTIME = new Date('2024-03-04T05:06:07Z');
const CHUNK = 1 << 20;

/** Parses 200M, 1G, 4G, 1.5G or a plain byte count. */
export function parseSize(text) {
  const match = /^(\d+(?:\.\d+)?)([KMG]?)$/i.exec(String(text).trim());
  if (!match) throw new Error(`not a size: '${text}' (expected e.g. 200M, 1G, 4G)`);
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[match[2].toUpperCase()];
  return Math.round(Number(match[1]) * unit);
}

/** xorshift128: fast, seeded, good enough to make data no compressor can predict. */
export function seededGenerator(seed) {
  let a = 0x9e3779b9 ^ seed, b = 0x243f6a88 ^ Math.imul(seed, 31), c = 0xb7e15162, d = 0x6a09e667 ^ (seed >>> 3);
  const next = () => {
    const t = a ^ (a << 11);
    a = b; b = c; c = d;
    d = (d ^ (d >>> 19)) ^ (t ^ (t >>> 8));
    return d >>> 0;
  };
  for (let i = 0; i < 32; i++) next(); // mix the seed in
  return {
    next,
    /** Uniform in [0, 1). */
    unit: () => next() / 2 ** 32,
    int: (n) => Math.floor((next() / 2 ** 32) * n),
    /** Log-uniform in [low, high]: many small values, few large ones, as file sizes are. */
    logUniform: (low, high) => Math.round(Math.exp(Math.log(low) + (next() / 2 ** 32) * (Math.log(high) - Math.log(low)))),
    /** Fills a buffer (length a multiple of 4) with random words, optionally masked. */
    fill(buf, mask = 0xffffffff) {
      const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.length >>> 2);
      for (let i = 0; i < words.length; i++) {
        const t = a ^ (a << 11);
        a = b; b = c; c = d;
        d = (d ^ (d >>> 19)) ^ (t ^ (t >>> 8));
        words[i] = d & mask;
      }
      return buf;
    },
  };
}

const SYLLABLES = ['ker', 'nel', 'sys', 'tem', 'net', 'work', 'con', 'fig', 'lib', 'de', 'bi', 'an', 'ser', 'vice', 'mod',
  'ule', 'pro', 'cess', 'file', 'mount', 'boot', 'log', 'user', 'group', 'path', 'link', 'data', 'time', 'ad', 'dr', 'ess'];

/** Text in the style of configuration files, scripts and docs, from a small Zipf-like vocabulary. */
function textPool(random, size) {
  const words = Array.from({ length: 1500 }, () => Array.from({ length: 1 + random.int(3) }, () => SYLLABLES[random.int(SYLLABLES.length)]).join(''));
  const pick = () => words[Math.floor(words.length * random.unit() ** 3)]; // frequent words first
  const lines = [];
  let length = 0;
  while (length < size) {
    const style = random.int(4);
    const n = 2 + random.int(10);
    const body = Array.from({ length: n }, pick);
    const line = style === 0 ? `${body[0]}_${body[1]} = ${body.slice(2).join(' ')}`
      : style === 1 ? `    ${body[0]}(${body.slice(1, 3).join(', ')})  # ${body.slice(3).join(' ')}`
      : style === 2 ? `# ${body.join(' ')}`
      : `${body.join(' ')} ${random.int(65536)}`;
    lines.push(line);
    length += line.length + 1;
  }
  return Buffer.from(lines.join('\n') + '\n');
}

/**
 * Program and library bytes: 4 KiB pages of three kinds, like code, relocation tables and
 * padding in an ELF file. The mix compresses about 2.4x with gzip -6, as Debian's do.
 */
function fillBinary(random, buf) {
  for (let page = 0; page < buf.length; page += 4096) {
    const slice = buf.subarray(page, Math.min(page + 4096, buf.length));
    const kind = random.int(10);
    if (kind < 3) slice.fill(kind); // padding, zeroed sections
    else if (kind < 9) random.fill(slice, 0x0f0f0f0f); // code: skewed byte values
    else random.fill(slice); // data that does not compress
  }
}

/** Bytes of an already compressed file: its format's magic, then random bytes. */
const MAGIC = { gz: Buffer.from([0x1f, 0x8b, 0x08, 0x00]), xz: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), png: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) };

class TreeWriter {
  constructor(root, seed) {
    this.root = root;
    this.random = seededGenerator(seed);
    this.text = textPool(seededGenerator(seed + 1), 4 * 1024 * 1024);
    this.chunk = Buffer.alloc(CHUNK);
    this.dirs = new Set();
    this.stats = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0 };
  }

  dir(rel, mode = 0o755) {
    if (this.dirs.has(rel)) return;
    if (path.dirname(rel) !== rel) this.dir(path.dirname(rel));
    fs.mkdirSync(path.join(this.root, rel), { mode });
    this.dirs.add(rel);
    this.stats.dirs++;
  }

  /** Writes SIZE bytes of KIND in chunks: memory stays at one chunk whatever the file size. */
  file(rel, kind, size, mode = 0o644) {
    this.dir(path.dirname(rel));
    const fd = fs.openSync(path.join(this.root, rel), 'wx', mode);
    try {
      for (let done = 0; done < size; ) {
        const n = Math.min(CHUNK, size - done);
        fs.writeSync(fd, this.content(kind, n, done === 0 ? path.extname(rel).slice(1) : ''), 0, n);
        done += n;
      }
    } finally {
      fs.closeSync(fd);
    }
    fs.utimesSync(path.join(this.root, rel), TREE_MTIME, TREE_MTIME);
    this.stats.files++;
    this.stats.bytes += size;
  }

  content(kind, n, extension) {
    if (kind === 'text') {
      const start = this.random.int(this.text.length - n);
      return this.text.subarray(start, start + n);
    }
    const buf = this.chunk.subarray(0, (n + 3) & ~3);
    if (kind === 'binary') fillBinary(this.random, buf);
    else this.random.fill(buf);
    if (kind === 'compressed' && MAGIC[extension]) MAGIC[extension].copy(buf);
    return buf;
  }

  symlink(target, rel) {
    this.dir(path.dirname(rel));
    fs.symlinkSync(target, path.join(this.root, rel));
    fs.lutimesSync(path.join(this.root, rel), TREE_MTIME, TREE_MTIME);
    this.stats.symlinks++;
  }

  hardlink(existing, rel) {
    this.dir(path.dirname(rel));
    fs.linkSync(path.join(this.root, existing), path.join(this.root, rel));
    this.stats.hardlinks++;
  }

  /** Directory mtimes last: creating entries changed them. */
  finish() {
    for (const rel of [...this.dirs].reverse()) fs.utimesSync(path.join(this.root, rel), TREE_MTIME, TREE_MTIME);
  }
}

/** Writes the tree into ROOT (which must not exist) and returns what was written. */
export function writeSyntheticTree(root, size, seed = 1) {
  fs.mkdirSync(root);
  const previousUmask = process.umask(0); // modes exactly as listed
  try {
    const w = new TreeWriter(root, seed);
    const r = w.random;
    w.dirs.add('.');
    for (const [rel, mode] of [['tmp', 0o1777], ['var/tmp', 0o1777], ['root', 0o700], ['proc', 0o555], ['sys', 0o555], ['dev', 0o755], ['run', 0o755], ['mnt', 0o755], ['home', 0o755]]) w.dir(rel, mode);
    for (const rel of ['bin', 'sbin', 'lib', 'lib64']) w.symlink(`usr/${rel}`, rel);

    const packages = Math.max(8, Math.round(size / (2 * 1024 * 1024)));
    const pkg = () => `pkg${String(r.int(packages)).padStart(5, '0')}`;
    let serial = 0;
    const name = () => `${SYLLABLES[r.int(SYLLABLES.length)]}${SYLLABLES[r.int(SYLLABLES.length)]}${(serial++).toString(36)}`;

    // A few large files: a package database, a locale archive, a compressed firmware blob.
    const large = size * (1 - MIX.text - MIX.binary - MIX.compressed);
    w.file('var/lib/dpkg/available.db', 'binary', Math.round(large * 0.5));
    w.file('usr/lib/locale/locale-archive', 'text', Math.round(large * 0.35));
    w.file('usr/lib/firmware/blob.bin.xz', 'compressed', Math.round(large * 0.15));

    const programs = [];
    for (let budget = size * MIX.binary; budget > 0; ) {
      const bytes = r.logUniform(...SIZE_RANGE.binary);
      budget -= bytes;
      const where = r.int(10);
      if (where < 3) {
        const rel = `usr/bin/${name()}`;
        w.file(rel, 'binary', bytes, r.int(40) === 0 ? 0o4755 : 0o755);
        programs.push(rel);
      } else if (where < 4) {
        w.file(`usr/sbin/${name()}`, 'binary', bytes, 0o755);
      } else {
        const lib = `lib${name()}.so`;
        const dir = where < 8 ? 'usr/lib/x86_64-linux-gnu' : `usr/lib/${pkg()}`;
        const major = 1 + r.int(6);
        const real = `${lib}.${major}.0.${r.int(20)}`;
        w.file(`${dir}/${real}`, 'binary', bytes);
        w.symlink(real, `${dir}/${lib}.${major}`); // the soname link ldconfig makes
      }
    }
    // Programs known under two names (gzip/gunzip, vi/ex): hard links, at least one in any tree.
    programs.forEach((rel, i) => {
      if (i === 0 || r.int(8) === 0) w.hardlink(rel, `${rel}-alias`);
    });

    const compressedKinds = [
      () => `usr/share/doc/${pkg()}/changelog.Debian.${name()}.gz`,
      () => `usr/share/man/man${1 + r.int(8)}/${name()}.${1 + r.int(8)}.gz`,
      () => `usr/share/icons/hicolor/${[16, 32, 48, 256][r.int(4)]}x/${name()}.png`,
      () => `var/cache/${pkg()}/${name()}.xz`,
    ];
    for (let budget = size * MIX.compressed; budget > 0; ) {
      const bytes = r.logUniform(...SIZE_RANGE.compressed);
      budget -= bytes;
      w.file(compressedKinds[r.int(compressedKinds.length)](), 'compressed', bytes);
    }

    const textKinds = [
      () => [`etc/${pkg()}/${name()}.conf`, 0o644],
      () => [`usr/share/doc/${pkg()}/${name()}`, 0o644],
      () => [`usr/lib/python3/dist-packages/${pkg()}/${name()}.py`, 0o644],
      () => [`usr/share/${pkg()}/${name()}.sh`, 0o755],
      () => [`var/log/${name()}.log`, 0o640],
    ];
    for (let budget = size * MIX.text; budget > 0; ) {
      const bytes = r.logUniform(...SIZE_RANGE.text);
      budget -= bytes;
      const [rel, mode] = textKinds[r.int(textKinds.length)]();
      w.file(rel, 'text', bytes, mode);
    }
    // Alternatives: absolute symlinks, as update-alternatives makes them.
    for (let i = 0; i < Math.min(programs.length, 200); i += 4) w.symlink(`/${programs[i]}`, `etc/alternatives/${path.basename(programs[i])}`);
    w.finish();
    return w.stats;
  } finally {
    process.umask(previousUmask);
  }
}

function main(argv) {
  const args = { size: '1G', seed: '1' };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(size|seed)(?:=(.*))?$/.exec(argv[i]);
    if (m) args[m[1]] = m[2] ?? argv[++i];
    else rest.push(argv[i]);
  }
  if (rest.length !== 1) {
    process.stderr.write('usage: make-synthetic-tree.mjs [--size 1G] [--seed 1] DIR\n');
    return 2;
  }
  const dir = path.resolve(rest[0]);
  if (fs.existsSync(dir)) {
    process.stdout.write(`tree already built: ${dir}\n`);
    return 0;
  }
  const partial = `${dir}.partial`;
  fs.rmSync(partial, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const started = Date.now();
  const stats = writeSyntheticTree(partial, parseSize(args.size), Number(args.seed));
  fs.renameSync(partial, dir);
  const seconds = (Date.now() - started) / 1000;
  process.stdout.write(`tree built: ${dir}: ${stats.files} files, ${stats.dirs} directories, ${stats.symlinks} symlinks, ${stats.hardlinks} hard links, ${(stats.bytes / 1e6).toFixed(0)} MB in ${seconds.toFixed(1)} s\n`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) process.exitCode = main(process.argv.slice(2));
