/**
 * Server-rendered pages (eta, auto-escaped). Templates live in views/ and set
 * their own layout; browser scripts are ES modules under views/assets/.
 */
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';

export const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url));

export type Render = (template: string, data: Record<string, unknown>) => string;

export function createRenderer(viewsDir = VIEWS_DIR): Render {
  const eta = new Eta({ views: viewsDir, cache: true, autoEscape: true, autoTrim: false });
  return (template, data) => eta.render(`./${template}`, data);
}
