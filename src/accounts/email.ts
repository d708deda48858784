/**
 * The one form of an email address Postern stores, compares and limits by:
 * trimmed and lower-cased (addresses differing only in case are one account).
 */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}
