import type { Row } from '../tables/types.js';

/** The manifest's name in a bundle's image directory. */
export const MANIFEST_MEMBER = 'manifest.xml';

/** A statelite bundle's root tree: a gzip'd newc cpio whose names start with TREE_PREFIX. */
export const TREE_MEMBER = 'rootimgtree.gz';
export const TREE_PREFIX = 'rootimg';

/** A statelite bundle's litefile rows, as xCAT's export names them. */
export const LITEFILE_MEMBER = 'litefile.csv';

/** One `-e SRC[:DESTDIR]` extra: absolute source path and destination directory. */
export interface ManifestExtra {
  src: string;
  dest: string;
}

/**
 * manifest.xml as data: what xCAT's imgexport writes under <xcatimage> (xcat-bundle-format.md
 * section 2). Paths are logical (unprefixed) absolute paths on the exporting node.
 */
export interface Manifest {
  osimage: Row;
  linuximage: Row;
  kernel?: string;
  ramdisk?: string;
  rootimg?: string;
  rootimgtree?: string;
  litefile?: string;
  media?: string;
  postscripts?: string;
  postbootscripts?: string;
  extra: ManifestExtra[];
  /** kit rows; written with a leading <name> = kitname. */
  kit: Row[];
  /** kitrepo rows; <name> = kitreponame. */
  kitrepo: Row[];
  /** kitcomponent rows; <name> = kitcompname. */
  kitcomp: Row[];
  /** s390x raw/sysclone/netboot image files. */
  rawimagefiles: string[];
  /** What the reader skipped (unknown elements or columns); never written. */
  warnings?: string[];
}

/** Top-level elements that hold one path each, exported as IMAGE/basename(path). */
export const MANIFEST_FILE_KEYS = ['kernel', 'ramdisk', 'rootimg', 'rootimgtree', 'litefile'] as const;

/** An empty manifest for the given rows. */
export function emptyManifest(osimage: Row, linuximage: Row): Manifest {
  return { osimage, linuximage, extra: [], kit: [], kitrepo: [], kitcomp: [], rawimagefiles: [] };
}
