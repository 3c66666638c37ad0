/* stock screen: to be built. */

import {h, t} from "./core.js";

export const screen = {
  id: "stock",
  label: "stock.nav",
  strings: {
    "en-US": {"stock.nav": "Stock"},
    "zh-CN": {"stock.nav": "库存"},
  },
  mount(section) {
    section.append(h("h2", {id: "screen-stock-title", "data-i18n": "stock.nav"}, t("stock.nav")));
  },
  show() {},
};
