/** The memory store against the shared contract. */
import * as Memory from './memory.js';
import { describeStore } from './storeContract.js';

describeStore('Memory', async () => Memory.create());
