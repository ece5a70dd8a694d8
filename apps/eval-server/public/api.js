// The dashboard's access to the JSON API. When the server requires the token for reads
// (--read-token), the dashboard asks for it once and keeps it for this browser tab only.

const TOKEN_KEY = 'kiln-eval-token';

export class AuthRequired extends Error {}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export async function api(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const res = await fetch(path, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  if (res.status === 401) throw new AuthRequired(token ? 'the token was refused' : 'this server needs its token for reads');
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}
