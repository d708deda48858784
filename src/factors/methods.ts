/**
 * The sign-in factors Postern has (names as in pool files and the
 * interaction API), and which may come first or second. The lists are the
 * pool file schema's (src/config/schema.ts), the one place they are written.
 */
import type { FIRST_FACTORS, SECOND_FACTORS } from '../config/schema.ts';

export { FIRST_FACTORS, SECOND_FACTORS } from '../config/schema.ts';

export type Method = (typeof FIRST_FACTORS)[number] | (typeof SECOND_FACTORS)[number];
