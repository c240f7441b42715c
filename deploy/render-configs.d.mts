/** Absolute path of deploy/. */
export declare const deployDir: string;
/** Absolute path of deploy/compose/. */
export declare const composeDir: string;
export declare const COMPONENT_PORT: number;
export declare const COMPONENT_INTERFACE: string;

/** deploy/compose/switchboard.env when it exists, else deploy/compose/switchboard.env.example. */
export declare function composeEnvFile(): string;

/** KEY=VALUE lines as docker compose reads an env_file. */
export declare function parseEnvFile(text: string): Record<string, string>;

/** The parent of the component's domain (sms.example.com → example.com). */
export declare function userDomain(componentDomain: string): string;

/** The files of deploy/compose/ rendered from the templates, keyed by file name. */
export declare function renderComposeConfigs(env: Readonly<Record<string, string>>, source?: string): Record<string, string>;

/** Renders from `envFile` and pairs each output file with its current content. */
export declare function compareComposeConfigs(envFile?: string): { path: string; expected: string; actual: string | undefined }[];
