// Vitest setup: Testing Library's findBy*/waitFor wait up to 10 s (1 s by default), so a screen test
// on a loaded 2-core machine waits for its condition instead of failing on the clock.
import { configure } from "@testing-library/react";

configure({ asyncUtilTimeout: 10_000 });
