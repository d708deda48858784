/**
 * `npm run bench`: a placeholder until the performance issue fills it with
 * the passkey sign-in benchmark (budget: ≤ 5 ms of CPU per sign-in, DESIGN.md).
 */
console.log('No benchmark yet: the passkey sign-in benchmark arrives with the performance issue.');
