// Exports: inline files decoded, stored ones downloaded with the caller's key, both checked by sha256.
import { createHash } from "node:crypto";
import { fakeGateway } from "./testing";
import { downloadExport, exportBytes } from "./download";

const CSV = "\ufeffa,b\n1,2\n";
const bytes = new TextEncoder().encode(CSV);
const sha256 = createHash("sha256").update(bytes).digest("hex");
const base = { filename: "messages.csv", mimeType: "text/csv" };

beforeEach(() => {
  URL.createObjectURL = vi.fn(() => "blob:x");
  URL.revokeObjectURL = vi.fn();
});

test("an inline export is decoded from base64 and checked", async () => {
  const { api, calls } = fakeGateway({});
  const got = await downloadExport(api, { ...base, contentBase64: btoa(String.fromCharCode(...bytes)), sha256 });
  expect(new TextDecoder("utf-8", { ignoreBOM: true }).decode(got)).toBe(CSV);
  expect(calls).toEqual([]);
  expect(URL.createObjectURL).toHaveBeenCalledTimes(1);
});

test("a stored export is downloaded from /exports/<objectName> with the key, checked and saved", async () => {
  const objectName = "viewer/0a1b/messages 2026.csv";
  const { api, calls } = fakeGateway({ "GET /exports/viewer/0a1b/messages%202026.csv": bytes });
  const got = await downloadExport(api, { ...base, objectName, sha256 });
  expect(new TextDecoder("utf-8", { ignoreBOM: true }).decode(got)).toBe(CSV);
  expect(calls).toHaveLength(1);
  expect(calls[0].headers.Authorization).toBe("Bearer k");
  expect(URL.createObjectURL).toHaveBeenCalledTimes(1);
});

test("a download that does not match its sha256 is refused and not saved", async () => {
  const { api } = fakeGateway({ "GET /exports/viewer/x/a.csv": bytes });
  await expect(downloadExport(api, { ...base, objectName: "viewer/x/a.csv", sha256: "0".repeat(64) })).rejects.toMatchObject({ code: "CHECKSUM" });
  expect(URL.createObjectURL).not.toHaveBeenCalled();
});

test("the route's error envelope is the error (a key below the export's role, a gone export)", async () => {
  const { api } = fakeGateway({});
  await expect(exportBytes(api, { ...base, objectName: "admin/x/a.csv" })).rejects.toMatchObject({ code: "NOT_FOUND", status: 404 });
});
