#!/usr/bin/env -S MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=4194304 MALLOC_TRIM_THRESHOLD_=16777216 node --max-semi-space-size=1 --expose-gc
// Memory settings, measured (README, "How it is built"): a 1 MiB young generation frees file data soon after use;
// glibc keeps freed MiB-sized buffers for reuse instead of faulting fresh pages in for every chunk read.
import { contextFrom, locationsFrom } from '../core/context.js';
import { UsageError } from '../core/errors.js';
import { importBundle } from '../import/import-bundle.js';
import { listOption, runCommand, stringOption } from './command.js';

const USAGE = `imgimport: Imports an xCAT image bundle (made by imgexport) into this management node
Usage:
\timgimport [-h|--help]
\timgimport <bundle_file_name> [-p|--postscripts <nodes>] [-f|--profile <new_profile>] [-R|--remotehost <userid@host>] [-n|--nozip] [-v]
Options of imgport:
\t--dry-run            print every destination, .ORIG rename and table row; write nothing
\t--allow-dest DIR     also allow destinations under DIR (repeatable; default: INSTALLDIR and XCATROOT/share)
\t                     kit plugins (code xcatd runs) need --allow-dest XCATROOT/lib/perl/xCAT_plugin;
\t                     a link under INSTALLDIR to other storage needs --allow-dest WHERE_IT_LEADS;
\t                     IMGPORT_ALLOW_DEST=DIR:DIR... allows them for every import
\t--root DIR, --db FILE   sandbox prefix and table file
\tbundle '-' reads standard input; gzip, zstd or plain tar is recognised from the first bytes (-n is accepted and not needed)
`;

await runCommand({
  usage: USAGE,
  options: {
    postscripts: { type: 'string', short: 'p' },
    profile: { type: 'string', short: 'f' },
    remotehost: { type: 'string', short: 'R' },
    nozip: { type: 'boolean', short: 'n' },
    verbose: { type: 'boolean', short: 'v' },
    'dry-run': { type: 'boolean' },
    'allow-dest': { type: 'string', multiple: true },
  },
  async run(values, positionals) {
    const [bundle, ...rest] = positionals;
    if (!bundle) throw new UsageError('missing bundle file name');
    if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`);
    // IMGPORT_ALLOW_DEST (colon-separated): a site's standing allowances, its storage links say.
    const allowDest = [...listOption(values, 'allow-dest'), ...(process.env.IMGPORT_ALLOW_DEST ?? '').split(':').filter(Boolean)];
    for (const dir of allowDest) if (!dir.startsWith('/')) throw new UsageError(`--allow-dest and IMGPORT_ALLOW_DEST need absolute directories, not '${dir}'`);
    const ctx = contextFrom(values);
    await importBundle({
      bundle,
      remotehost: stringOption(values, 'remotehost'),
      newProfile: stringOption(values, 'profile'),
      postscripts: stringOption(values, 'postscripts'),
      allowDest,
      dryRun: values['dry-run'] === true,
      verbose: values.verbose === true,
      sandbox: ctx.sandbox,
      store: ctx.store,
      locations: (tables) => locationsFrom(ctx, tables),
      out: (line) => void process.stdout.write(`${line}\n`),
      warn: (line) => void process.stderr.write(`${line}\n`),
    });
  },
});
