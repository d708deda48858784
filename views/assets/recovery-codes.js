// Recovery codes on a page: the list, a button that copies them (the
// Clipboard API, else the older copy command on a hidden text area) and a
// link that downloads them as a .txt file (a Blob URL). Shared by the sign-in
// page and the account page; the codes never leave the browser.

let downloadUrl;

/**
 * Shows `codes` in `list` and wires `copyButton` and `downloadLink` to them.
 * `report(message, ok)` tells the user how copying went.
 */
export function showRecoveryCodes({ list, copyButton, downloadLink, codes, service, account, report }) {
  list.replaceChildren(
    ...codes.map((code) => {
      const item = document.createElement('li');
      item.textContent = code;
      return item;
    }),
  );
  const text = [
    `Recovery codes for ${account ? `${account} at ` : ''}${service || 'your account'}`,
    'Each code signs you in once, if you lose your passkeys. Keep this file somewhere safe.',
    '',
    ...codes,
    '',
  ].join('\n');

  if (downloadUrl) URL.revokeObjectURL(downloadUrl);
  downloadUrl = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
  downloadLink.href = downloadUrl;
  downloadLink.download = `${slug(service) || 'account'}-recovery-codes.txt`;

  copyButton.onclick = async () => {
    if (await copy(text)) report('The codes were copied. Paste them somewhere safe.', true);
    else
      report(
        'This browser did not let the page copy. Select the codes and copy them, or download them.',
        false,
      );
    copyButton.focus();
  };
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No Clipboard API (an older browser) or no permission: the copy command still works in many.
    const area = document.createElement('textarea');
    area.value = text;
    area.readOnly = true;
    area.className = 'offscreen';
    document.body.append(area);
    area.select();
    let copied = false;
    try {
      copied = document.execCommand('copy');
    } catch {
      copied = false;
    }
    area.remove();
    return copied;
  }
}

function slug(name) {
  return String(name || '')
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}
