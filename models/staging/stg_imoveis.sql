{{ config(alias='imoveis') }}

with

latest as (
    {{ latest_version_by_id(source('bronze', 'imoveis'), 'imovel_id') }}
),

condominios as (
    select condominio_id from {{ ref('stg_condominios') }}
),

tipos_canonicos as (
    select tipo from {{ ref('tipos_imovel') }}
),

cleaned as (
    select
        latest.*,
        trim({{ collapse_whitespace('latest.tipo') }}) as tipo_limpo
    from latest
)

select
    cast(cleaned.imovel_id as integer) as imovel_id,
    {{ as_varchar('coalesce(tipos_canonicos.tipo, cleaned.tipo_limpo)', 50) }} as tipo,
    cast(cleaned.condominio_id as integer) as condominio_id,
    cast(cleaned.valor as decimal(15, 2)) as valor,
    {{ lineage_columns('cleaned') }}
from cleaned
inner join condominios
    on cleaned.condominio_id = condominios.condominio_id
left join tipos_canonicos
    on lower(cleaned.tipo_limpo) = lower(tipos_canonicos.tipo)
