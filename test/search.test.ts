import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { Sandbox } from '../src/core/sandbox.js';
import { findProfileFile } from '../src/xcat/search.js';

const image = { profile: 'compute', osvers: 'rhels8.5.0', osarch: 'x86_64' };

function setup(t: { teardown(fn: () => void): void }) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'imgport-search-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const loc = { sandbox: new Sandbox(root), installdir: '/install', xcatroot: '/opt/xcat' };
  const touch = (logical: string) => {
    fs.mkdirSync(path.dirname(path.join(root, logical)), { recursive: true });
    fs.writeFileSync(path.join(root, logical), 'x');
  };
  const remove = (logical: string) => fs.rmSync(path.join(root, logical));
  return { loc, touch, remove, root };
}

t.test('file names most specific first', async (t) => {
  const { loc, touch, remove } = setup(t);
  const dir = '/install/custom/netboot/rh';
  const names = ['compute.rhels8.5.0.x86_64.pkglist', 'compute.rhels8.5.0.pkglist', 'compute.x86_64.pkglist', 'compute.pkglist'];
  for (const name of names) touch(`${dir}/${name}`);
  for (const name of names) {
    t.equal(findProfileFile(loc, 'netboot', 'pkglist', image), `${dir}/${name}`);
    remove(`${dir}/${name}`);
  }
  t.equal(findProfileFile(loc, 'netboot', 'pkglist', image), undefined);
});

t.test('distro directory: the longest existing prefix of osvers', async (t) => {
  const { loc, touch } = setup(t);
  touch('/install/custom/install/rh/compute.tmpl');
  t.equal(findProfileFile(loc, 'install', 'tmpl', image), '/install/custom/install/rh/compute.tmpl');
  touch('/install/custom/install/rhels8/compute.tmpl');
  t.equal(findProfileFile(loc, 'install', 'tmpl', image), '/install/custom/install/rhels8/compute.tmpl', 'rhels8 beats rh');
  t.equal(findProfileFile(loc, 'netboot', 'tmpl', image), undefined, 'kind selects the directory');
});

t.test('custom first, then XCATROOT/share/xcat; a custom distro dir without the file falls through', async (t) => {
  const { loc, touch } = setup(t);
  touch('/opt/xcat/share/xcat/netboot/rh/compute.rhels8.5.0.pkglist');
  t.equal(findProfileFile(loc, 'netboot', 'pkglist', image), '/opt/xcat/share/xcat/netboot/rh/compute.rhels8.5.0.pkglist');
  touch('/install/custom/netboot/rhels/other.pkglist');
  t.equal(findProfileFile(loc, 'netboot', 'pkglist', image), '/opt/xcat/share/xcat/netboot/rh/compute.rhels8.5.0.pkglist');
  touch('/install/custom/netboot/rhels/compute.pkglist');
  t.equal(findProfileFile(loc, 'netboot', 'pkglist', image), '/install/custom/netboot/rhels/compute.pkglist', 'custom wins, even less specific');
  t.equal(findProfileFile(loc, 'netboot', 'exlist', image), undefined);
});

t.test('installdir and xcatroot come from the locations', async (t) => {
  const { loc, touch } = setup(t);
  touch('/srv/inst/custom/netboot/rh/compute.synclist');
  touch('/usr/xcat/share/xcat/install/rh/compute.x86_64.tmpl');
  const moved = { ...loc, installdir: '/srv/inst', xcatroot: '/usr/xcat' };
  t.equal(findProfileFile(moved, 'netboot', 'synclist', image), '/srv/inst/custom/netboot/rh/compute.synclist');
  t.equal(findProfileFile(moved, 'install', 'tmpl', image), '/usr/xcat/share/xcat/install/rh/compute.x86_64.tmpl');
  t.equal(findProfileFile(loc, 'netboot', 'synclist', image), undefined);
});
