// Saving an export (`ExportFile`: export-report, export-logs) as a file in the browser: a small one
// came inline as base64, a large one is named by `objectName` and downloaded from the gateway with the
// caller's key in the Authorization header (never a link carrying the key). Either way its sha256, when
// the reply gives one, is checked before the file is saved.
import { ApiError, type Api } from "./api/client";

export interface ExportedFile {
  filename: string;
  mimeType: string;
  contentBase64?: string | null;
  objectName?: string | null;
  sha256?: string | null;
}

/** The file's bytes: decoded from the reply, or downloaded by its object name. */
export async function exportBytes(api: Api, f: ExportedFile): Promise<Uint8Array> {
  if (f.contentBase64 != null) return Uint8Array.from(atob(f.contentBase64), (c) => c.charCodeAt(0));
  if (!f.objectName) throw new ApiError("BAD_REPLY", `${f.filename}: neither inline nor stored`, 0);
  return new Uint8Array(await api.exportFile(f.objectName));
}

/** Lower-case hex SHA-256 of `bytes`, or null where the browser has no WebCrypto (a page served over
 * plain HTTP from a host other than localhost is not a secure context). */
export async function sha256Hex(bytes: Uint8Array): Promise<string | null> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return null;
  const digest = new Uint8Array(await subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Saves `blob` the way a browser downloads a file. */
export function saveBlob(filename: string, blob: Blob) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Gets the export's bytes, checks them against its sha256 and saves them as its filename. */
export async function downloadExport(api: Api, f: ExportedFile): Promise<Uint8Array> {
  const bytes = await exportBytes(api, f);
  const digest = f.sha256 ? await sha256Hex(bytes) : null;
  if (digest !== null && digest !== f.sha256) {
    throw new ApiError("CHECKSUM", `${f.filename}: the downloaded file does not match its sha256`, 0);
  }
  saveBlob(f.filename, new Blob([bytes as Uint8Array<ArrayBuffer>], { type: f.mimeType }));
  return bytes;
}
