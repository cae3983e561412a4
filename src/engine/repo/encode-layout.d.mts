/** Types of encode-layout.mjs. */
export declare const AAD_PREFIX_BYTES: 72;
export declare const KEY_BYTES: 32;
export declare const ID_BYTES: 32;
export declare const SEAL: Readonly<{ LENGTH: 0; COMPRESS: 4; KEY: 5; AAD: number; BYTES: number }>;
export declare const OPEN: Readonly<{
  SEALED_LENGTH: 0;
  RAW_LENGTH: 4;
  FLAGS: 8;
  KEY: 9;
  ID_KEY: number;
  AAD: number;
  ID: number;
  BYTES: number;
}>;
export declare const RESTORE: Readonly<{ PACK: number; OFFSET: number; BYTES: number }>;
