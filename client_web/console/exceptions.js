/* exceptions screen: to be built. */

import {h, t} from "./core.js";

export const screen = {
  id: "exceptions",
  label: "exceptions.nav",
  strings: {
    "en-US": {"exceptions.nav": "Exceptions"},
    "zh-CN": {"exceptions.nav": "异常"},
  },
  mount(section) {
    section.append(h("h2", {id: "screen-exceptions-title", "data-i18n": "exceptions.nav"}, t("exceptions.nav")));
  },
  show() {},
};
