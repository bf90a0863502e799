// The portal's views, in the order of its navigation.
import type { View } from "../app/app";
import { keysView } from "./keys";
import { providerView } from "./provider";
import { recordsView } from "./records";
import { sharingView } from "./sharing";
import { requestsView } from "./requests";
import { researcherView } from "./researcher";

export const VIEWS: View[] = [recordsView, sharingView, requestsView, keysView, providerView, researcherView];
