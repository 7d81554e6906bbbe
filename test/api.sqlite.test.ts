import { apiSuite } from "./support/api-suite.ts";
apiSuite("sqlite");
