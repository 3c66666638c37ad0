// Starts the Swagger UI of /docs on the server's own OpenAPI document (no inline script:
// the pages' Content-Security-Policy allows scripts from the server only).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
