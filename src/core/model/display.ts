// How numbers are shown to people (notes, errors, nicknames). Pure.
import { parsePhoneNumberFromString } from "libphonenumber-js/max";
import { remembered } from "../util/remembered.js";

const international = remembered((number: string): string => {
  const n = parsePhoneNumberFromString(number);
  return n?.isPossible() ? n.formatInternational() : number;
});

/** International format (`+1 555 222 3333`) for an E.164 number; anything else unchanged. */
export function displayNumber(number: string): string {
  return number.startsWith("+") ? international(number) : number;
}
