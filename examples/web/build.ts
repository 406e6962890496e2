/**
 * Bundles the example page (examples/web/main.ts) for the browser with esbuild: one minified
 * ESM script, plus the page's HTML and CSS read as they are. Used by `npm run web` (serve.ts),
 * the Chromium test of the page and bench/bundle-size.ts.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

export const WEB_ENTRY = fileURLToPath(new URL("./main.ts", import.meta.url));

export interface WebBundle {
  /** The page's script (ESM, minified, with an inline source map unless `sourcemap: false`). */
  readonly js: string;
  readonly html: string;
  readonly css: string;
  /** Input files of the script, relative to the project root (esbuild metafile). */
  readonly inputs: readonly string[];
}

export async function bundleWebExample(options: { sourcemap?: boolean } = {}): Promise<WebBundle> {
  const result = await build({
    entryPoints: [WEB_ENTRY],
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    minify: true,
    sourcemap: options.sourcemap === false ? false : "inline",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const out = result.outputFiles[0];
  if (out === undefined) throw new Error("esbuild produced no output for examples/web/main.ts");
  const [html, css] = await Promise.all([
    readFile(new URL("./index.html", import.meta.url), "utf8"),
    readFile(new URL("./style.css", import.meta.url), "utf8"),
  ]);
  return { js: out.text, html, css, inputs: Object.keys(result.metafile.inputs) };
}
