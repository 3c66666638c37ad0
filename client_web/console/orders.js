/* orders screen: to be built. */

import {h, t} from "./core.js";

export const screen = {
  id: "orders",
  label: "orders.nav",
  strings: {
    "en-US": {"orders.nav": "Orders and waves"},
    "zh-CN": {"orders.nav": "订单与波次"},
  },
  mount(section) {
    section.append(h("h2", {id: "screen-orders-title", "data-i18n": "orders.nav"}, t("orders.nav")));
  },
  show() {},
};
