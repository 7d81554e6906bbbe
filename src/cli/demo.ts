export async function runDemo(_p: number, _k: boolean): Promise<number> { return 0; }
