import path from 'node:path';
import { ImageError } from '../core/errors.js';
import { listItems, type Tables } from '../tables/types.js';

/** What packimage needs to know about an image, from its osimage and linuximage rows. */
export interface PackTarget {
  imagename: string;
  osvers: string;
  osarch: string;
  profile: string;
  /** Logical ROOTIMGDIR: where the packed file goes; the tree is ROOTIMGDIR/rootimg. */
  rootimgdir: string;
  /** The linuximage exlist column (comma-separated logical paths), if set. */
  exlist?: string;
}

/**
 * Finds the image (its osimage and linuximage rows) and checks it can be packed, refusing with
 * xCAT's messages. ROOTIMGDIR is the linuximage `rootimgdir`, else
 * INSTALLDIR/netboot/OSVERS/OSARCH/PROFILE as xCAT derives it.
 */
export function packTargetOf(tables: Tables, imagename: string, installdir: string): PackTarget {
  const osimage = tables.osimage?.find((row) => row.imagename === imagename);
  if (!osimage) throw new ImageError(`Cannot find image '${imagename}' from the osimage table.`, imagename);
  const linuximage = tables.linuximage?.find((row) => row.imagename === imagename);
  if (!linuximage) throw new ImageError(`Cannot find ${imagename} from the linuximage table.`, imagename);
  const { osvers, osarch, profile, provmethod } = osimage;
  if (!(osvers && osarch && profile && provmethod)) {
    throw new ImageError(
      `osimage.osvers, osimage.osarch, osimage.profile and osimage.provmethod must be specified for the image ${imagename} in the database.`,
      imagename,
    );
  }
  if (provmethod !== 'netboot') {
    throw new ImageError(`'${imagename}' cannot be used to build diskless image. Make sure osimage.provmethod is 'netboot'.`, imagename);
  }
  // Paths in the tables are absolute; a relative one (a typo, a hand-edited table) would mean wherever packimage runs.
  for (const [column, value] of [['rootimgdir', linuximage.rootimgdir], ...listItems(linuximage.exlist).map((file) => ['exlist', file])]) {
    if (value && !value.startsWith('/')) throw new ImageError(`linuximage.${column} of ${imagename} names '${value}', which is not an absolute path`, imagename);
  }
  return {
    imagename,
    osvers,
    osarch,
    profile,
    rootimgdir: linuximage.rootimgdir || path.posix.join(installdir, 'netboot', osvers, osarch, profile),
    exlist: linuximage.exlist || undefined,
  };
}
