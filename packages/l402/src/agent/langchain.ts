/**
 * `l402/agent/langchain`: the buyer tools as LangChain.js tools (`@langchain/core`, an optional peer).
 * Each returns JSON text; a refusal (budget, approval, forbidden origin) comes back as
 * `{ "error": { "code", "message" } }` for the model to read, not as a thrown exception.
 *
 * @example
 * import { langchainTools } from 'l402/agent/langchain';
 * const tools = langchainTools({ wallet, store, ledger, budget: { perDaySats: 500 } });
 * const agent = createReactAgent({ llm, tools });
 */
import { tool } from '@langchain/core/tools';
import { z } from 'zod';
import * as Tools from './tools.js';

/** The buyer tools for LangChain.js. */
export function langchainTools(context: Tools.Context) {
  return Tools.buyer(context).map((t) =>
    tool(
      async (input: Record<string, unknown>) => {
        try {
          return JSON.stringify(await t.run(z.object(t.input).parse(input)));
        } catch (error) {
          return JSON.stringify({ error: Tools.errorOf(error) });
        }
      },
      { name: t.name, description: t.description, schema: z.object(t.input) },
    ),
  );
}
