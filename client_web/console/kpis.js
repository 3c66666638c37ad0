/* kpis screen: to be built. */

import {h, t} from "./core.js";

export const screen = {
  id: "kpis",
  label: "kpis.nav",
  strings: {
    "en-US": {"kpis.nav": "KPIs"},
    "zh-CN": {"kpis.nav": "指标"},
  },
  mount(section) {
    section.append(h("h2", {id: "screen-kpis-title", "data-i18n": "kpis.nav"}, t("kpis.nav")));
  },
  show() {},
};
