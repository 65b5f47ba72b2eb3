/**
 * `l402/agent/ai`: the buyer tools for the Vercel AI SDK (`ai`, an optional peer), keyed by name as
 * `generateText({ tools })` takes them. A refusal (budget, approval, forbidden origin) is returned as
 * `{ error: { code, message } }` for the model to read.
 *
 * @example
 * import { aiTools } from 'l402/agent/ai';
 * const { text } = await generateText({ model, tools: aiTools({ wallet, store, ledger }), prompt });
 */
import { type Tool, tool } from 'ai';
import { z } from 'zod';
import * as Tools from './tools.js';

/** The buyer tools for the AI SDK, by name. */
export function aiTools(context: Tools.Context): Record<string, Tool> {
  const out: Record<string, Tool> = {};
  for (const t of Tools.buyer(context)) {
    const schema = z.object(t.input);
    out[t.name] = tool({
      description: t.description,
      inputSchema: schema,
      execute: async (input: unknown) => {
        try {
          return await t.run(schema.parse(input));
        } catch (error) {
          return { error: Tools.errorOf(error) };
        }
      },
    }) as Tool;
  }
  return out;
}
