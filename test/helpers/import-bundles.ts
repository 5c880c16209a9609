/** Bundles for import tests: fixture members re-packed (manifest first, SHA256SUMS last) or made up. */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { FIXTURES } from './import-sandbox.js';

export interface Member {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  data?: Buffer;
  mode?: number;
  linkname?: string;
  uid?: number;
  gid?: number;
  mtime?: Date;
  /** pax records written before the member's header */
  pax?: Record<string, string>;
}

/** The members of a fixture bundle, in order, with their data. */
export async function fixtureMembers(bundle: string): Promise<Member[]> {
  const extract = tar.extract();
  const members: Member[] = [];
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      const h = entry.header;
      members.push({ name: h.name, type: h.type as Member['type'], data: Buffer.concat(chunks), mode: h.mode, linkname: h.linkname ?? undefined });
    }
  })();
  extract.end(gunzipSync(fs.readFileSync(path.join(FIXTURES, bundle))));
  await done;
  return members;
}

/** A tar (gzip'd unless `plain`) of the members. */
export async function packBundle(members: Member[], plain = false): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const m of members) {
    const type = m.type ?? 'file';
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name: m.name, type, mode: m.mode ?? (type === 'directory' ? 0o755 : 0o644), linkname: m.linkname, uid: m.uid ?? 0, gid: m.gid ?? 0, mtime: m.mtime ?? new Date(0), pax: m.pax }, type === 'file' ? m.data ?? Buffer.alloc(0) : undefined, (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await collected;
  const raw = Buffer.concat(chunks);
  return plain ? raw : gzipSync(raw);
}

/** SHA256SUMS text over the image's files (names relative to the image directory). */
export function sha256sums(members: Member[], image: string): string {
  return members
    .filter((m) => (m.type ?? 'file') === 'file')
    .map((m) => `${createHash('sha256').update(m.data ?? Buffer.alloc(0)).digest('hex')}  ${m.name.replace(/^\.\//, '').slice(image.length + 1)}\n`)
    .join('');
}

/** A fixture re-packed the way imgexport writes: manifest.xml first, SHA256SUMS last. */
export async function ourBundle(fixture: string, change: (members: Member[]) => void = () => undefined): Promise<{ data: Buffer; image: string; members: Member[] }> {
  const all = await fixtureMembers(fixture);
  const image = all.find((m) => m.name.endsWith('/manifest.xml'))!.name.replace(/^\.\//, '').split('/')[0];
  const manifest = all.filter((m) => m.name.endsWith(`${image}/manifest.xml`));
  const members = [...manifest, ...all.filter((m) => !manifest.includes(m) && m.name !== './' && m.type !== 'directory')];
  change(members);
  const sums: Member = { name: `./${image}/SHA256SUMS`, data: Buffer.from(sha256sums(members, image)) };
  return { data: await packBundle([...members, sums]), image, members };
}
