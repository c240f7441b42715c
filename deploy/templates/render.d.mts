/** Absolute path of deploy/templates. */
export declare const templatesDir: string;

/** Names of the `.tmpl` files in deploy/templates, sorted. */
export declare function listTemplates(): string[];

/** The distinct `{{NAME}}` variables a template uses, in order of first use. */
export declare function templateVariables(templateName: string): string[];

/**
 * Reads `templateName` from deploy/templates and replaces each `{{NAME}}` with `vars[NAME]`.
 * Throws an Error naming every variable the template uses that `vars` lacks.
 */
export declare function render(templateName: string, vars: Readonly<Record<string, string | number | boolean | undefined>>): string;
