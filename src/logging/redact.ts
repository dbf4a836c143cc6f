/** The URL with any password replaced by `***`, for logs and error messages. */
export function redactUrl(url: string): string {
  // The user name may be empty (`rediss://:password@host`, Redis's usual form), and the password may hold `:` or `/`.
  return url.replace(/\/\/([^:/@]*):([^@]*)@/, '//$1:***@');
}
