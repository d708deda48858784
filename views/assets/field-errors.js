// Marking a form field as the one an error is about (WCAG 3.3.1): aria-invalid,
// and described by the page's error element (id "error", role="alert"), so a
// screen reader reads the error with the field. Shared by the sign-in and
// account pages.

const ERROR_ID = 'error';

/** Marks `field` invalid and described by the error element. */
export function markInvalid(field) {
  field.setAttribute('aria-invalid', 'true');
  const described = (field.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
  if (!described.includes(ERROR_ID))
    field.setAttribute('aria-describedby', [...described, ERROR_ID].join(' '));
}

/** Undoes `markInvalid`, keeping any other description the field has. */
export function clearInvalid(field) {
  field.removeAttribute('aria-invalid');
  const described = (field.getAttribute('aria-describedby') || '')
    .split(' ')
    .filter((id) => id && id !== ERROR_ID);
  if (described.length > 0) field.setAttribute('aria-describedby', described.join(' '));
  else field.removeAttribute('aria-describedby');
}
