// How numbers are shown to people (notes, errors, nicknames). Pure.
import { parsePhoneNumberFromString } from "libphonenumber-js/max";
import { LRUCache } from "lru-cache";

// Parsing with the full metadata costs tens of µs and the same numbers are shown again and again.
const displayed = new LRUCache<string, string>({ max: 20_000 });

/** International format (`+1 555 222 3333`) for an E.164 number; anything else unchanged. */
export function displayNumber(number: string): string {
  if (!number.startsWith("+")) return number;
  const known = displayed.get(number);
  if (known !== undefined) return known;
  const n = parsePhoneNumberFromString(number);
  const shown = n?.isPossible() ? n.formatInternational() : number;
  if (number.length <= 64) displayed.set(number, shown);
  return shown;
}
