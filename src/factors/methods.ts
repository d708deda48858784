/**
 * The one list of sign-in factors Postern has (names as in pool files and
 * the interaction API), and which may come first or second.
 */
export const FIRST_FACTORS = ['passkey', 'email_otp', 'password'] as const;
export const SECOND_FACTORS = ['passkey', 'recovery_code'] as const;

export type Method = (typeof FIRST_FACTORS)[number] | (typeof SECOND_FACTORS)[number];
