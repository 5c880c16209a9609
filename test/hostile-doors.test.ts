/**
 * Links one import leaves behind must not become doors for the next: a link inside the allowed
 * destinations that leads out of them (a statelite tree's, a chain of an extra's relative links)
 * is never written through; `-f` names with control characters and kit repository links leading
 * out of the roots are refused or left out.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { craftNewc, DIR, FILE, SYMLINK } from './helpers/cpio-craft.js';
import { HOSTILE_IMAGE } from './helpers/hostile-bundles.js';
import { ourBundle, type Member } from './helpers/import-bundles.js';
import { makeSandbox, type ImportSandbox } from './helpers/import-sandbox.js';

const ROOTIMG = '/install/netboot/rhels8.5.0/x86_64/compute/rootimg';

function outsideDir(t: Tap.Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imgport-outside-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const member = (members: Member[], rel: string): Member => members.find((m) => m.name === `./${HOSTILE_IMAGE}/${rel}`)!;

/** The statelite fixture as another image, its pkglist and directory extra aimed at `below`. */
async function secondImageAimedAt(below: string): Promise<Buffer> {
  const { data } = await ourBundle('statelite.tgz', (members) => {
    const manifest = member(members, 'manifest.xml');
    manifest.data = Buffer.from(
      manifest.data!.toString()
        .replace(/<profile>compute</g, '<profile>other<')
        .replace(/x86_64\/compute\//g, 'x86_64/other/')
        .replace(/<imagename>rhels8\.5\.0-x86_64-statelite-compute</g, '<imagename>other-image<')
        .replace(/<pkglist>[^<]*</, `<pkglist>${below}/cron.d/compute.pkglist<`)
        .replace('<dest>/install/custom/mydir</dest>', `<dest>${below}/mydir</dest>`),
    );
  });
  return data;
}

function importFromStdin(t: Tap.Test, sandbox: ImportSandbox, bundle: Buffer, code: number) {
  const r = sandbox.run(['-'], bundle);
  t.equal(r.code, code, r.stderr);
  return r;
}

t.test("a statelite tree's link leading out is not written through by a later import", async (t) => {
  const outside = outsideDir(t);
  const sandbox = makeSandbox(t);
  const { data } = await ourBundle('statelite.tgz', (members) => {
    member(members, 'rootimgtree.gz').data = gzipSync(craftNewc([
      { name: 'rootimg', mode: DIR },
      { name: 'rootimg/etc', mode: DIR },
      { name: 'rootimg/etc/hosts', mode: FILE, body: '127.0.0.1 localhost\n' },
      { name: 'rootimg/door', mode: SYMLINK, body: outside },
    ]));
  });
  importFromStdin(t, sandbox, data, 0);
  t.equal(fs.readlinkSync(path.join(sandbox.root, ROOTIMG, 'door')), outside, 'an absolute link is normal in a root image');
  const r = importFromStdin(t, sandbox, await secondImageAimedAt(`${ROOTIMG}/door`), 1);
  t.match(r.stderr, `${ROOTIMG}/door is a symbolic link that leads out of the allowed destinations`);
  t.same(fs.readdirSync(outside), [], 'nothing written through it');
});

t.test("a chain of an extra's relative links that climbs out is not written through by a later import", async (t) => {
  const outside = outsideDir(t);
  const sandbox = makeSandbox(t);
  const mydir = path.join(sandbox.root, 'install/custom/mydir');
  // L -> . makes L/L/.. climb one level per '..' although the text stays inside.
  const climb = [...Array(8).fill('L'), ...Array(mydir.split('/').length + 2).fill('..')].join('/');
  const { data } = await ourBundle('statelite.tgz', (members) => {
    const at = members.indexOf(member(members, 'extra/install/mydir/a.txt'));
    members.splice(at, 0,
      { name: `./${HOSTILE_IMAGE}/extra/install/mydir/L`, type: 'symlink', linkname: '.' },
      { name: `./${HOSTILE_IMAGE}/extra/install/mydir/E`, type: 'symlink', linkname: `${climb}${outside}` });
  });
  importFromStdin(t, sandbox, data, 0);
  t.equal(fs.realpathSync.native(path.join(mydir, 'E')), fs.realpathSync.native(outside), 'E leads out, physically');
  const r = importFromStdin(t, sandbox, await secondImageAimedAt('/install/custom/mydir/E'), 1);
  t.match(r.stderr, '/install/custom/mydir/E is a symbolic link that leads out of the allowed destinations');
  t.same(fs.readdirSync(outside), [], 'nothing written through it');
});

t.test('a kit repository outside the allowed destinations gets no link', async (t) => {
  const outside = outsideDir(t);
  const sandbox = makeSandbox(t);
  const { data } = await ourBundle('kit.tgz', (members) => {
    const manifest = members.find((m) => m.name.endsWith('/manifest.xml'))!;
    manifest.data = Buffer.from(manifest.data!.toString().replace(/<kitrepodir>[^<]*</, `<kitrepodir>${outside}<`));
  });
  const r = importFromStdin(t, sandbox, data, 0);
  t.match(r.stderr, `Warning: the kit repository ${outside} is outside the allowed destinations: /install/post/otherpkgs/rhels8.5.0/x86_64/mykit-1.0-1-rhels-8-x86_64 is not made to point there.`);
  t.notOk(fs.existsSync(path.join(sandbox.root, '/install/post/otherpkgs/rhels8.5.0/x86_64/mykit-1.0-1-rhels-8-x86_64')));
});

t.test('-f with a control character is refused before anything is written', async (t) => {
  const sandbox = makeSandbox(t);
  const before = sandbox.files();
  const r = sandbox.run([sandbox.bundle('netboot.tgz'), '-f', 'a\nb']);
  t.equal(r.code, 1);
  t.match(r.stderr, "refusing profile 'a\nb': not a plain name");
  t.same(sandbox.files(), before);
});
