// XEP-0004 data forms: rendering the core's field descriptions and reading submitted values.
import xml, { type Element } from "@xmpp/xml";
import type { CommandField } from "../core/flows/commands.js";

export const NS_DATA = "jabber:x:data";

export interface FormSpec {
  type: "form" | "result";
  title?: string;
  instructions?: string;
  /** XEP-0068 FORM_TYPE, sent as a hidden field. */
  formType?: string;
  fields: CommandField[];
}

export function renderForm(spec: FormSpec): Element {
  return xml(
    "x",
    { xmlns: NS_DATA, type: spec.type },
    spec.title ? xml("title", {}, spec.title) : undefined,
    spec.instructions ? xml("instructions", {}, spec.instructions) : undefined,
    spec.formType ? xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, spec.formType)) : undefined,
    ...spec.fields.map((f) =>
      xml(
        "field",
        { type: f.type, ...(f.var ? { var: f.var } : {}), ...(f.label ? { label: f.label } : {}) },
        f.desc ? xml("desc", {}, f.desc) : undefined,
        f.required ? xml("required") : undefined,
        f.value !== undefined ? xml("value", {}, f.value) : undefined,
      ),
    ),
  );
}

export interface SubmittedForm {
  formType?: string;
  /** First value of each field, by var (multi-value fields are not used by any command). */
  values: Record<string, string>;
}

/** Reads a submitted (or any) data form; undefined when `x` is not one. Cancelled forms count as none. */
export function readForm(x: Element | undefined): SubmittedForm | undefined {
  if (!x || x.getNS() !== NS_DATA || x.attrs.type === "cancel") return undefined;
  const values: Record<string, string> = {};
  let formType: string | undefined;
  for (const field of x.getChildren("field")) {
    const name = field.attrs.var;
    if (!name) continue;
    const value = field.getChildText("value") ?? "";
    if (name === "FORM_TYPE") formType = value;
    else values[name] = value;
  }
  return { ...(formType !== undefined ? { formType } : {}), values };
}
